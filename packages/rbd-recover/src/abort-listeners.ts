import { getMaxListeners, setMaxListeners } from 'node:events';

/** Every running command listens for the abort: dozens at once are expected, not a leak. */
export function allowManyAbortListeners(signal: AbortSignal | undefined): void {
  if (signal && getMaxListeners(signal) < 256) setMaxListeners(256, signal);
}
