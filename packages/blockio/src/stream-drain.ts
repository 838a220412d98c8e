import { BlockIoError } from './errors.js';

/** The events of a writable stream that `waitForDrain` listens to (process.stdout, sockets, files). */
export interface DrainableStream {
  readonly destroyed?: boolean;
  once(event: 'drain' | 'close' | 'error', listener: (...args: unknown[]) => void): unknown;
  off?(event: 'drain' | 'close' | 'error', listener: (...args: unknown[]) => void): unknown;
}

/**
 * Waits until `stream` drains after a write returned false. Rejects (EPIPE) when the
 * stream errors or closes first — a reader that went away (`| head`) never drains,
 * and a plain `once('drain')` would wait forever — or when `signal` aborts.
 */
export function waitForDrain(
  stream: DrainableStream,
  options: { signal?: AbortSignal | undefined; path?: string | undefined } = {},
): Promise<void> {
  const path = options.path ?? 'output stream';
  const closed = () =>
    new BlockIoError('EPIPE', 'the output stream closed before everything was written', { path });
  if (stream.destroyed) return Promise.reject(closed());
  return new Promise<void>((resolve, reject) => {
    const settle = (error?: Error) => {
      stream.off?.('drain', onDrain);
      stream.off?.('close', onClose);
      stream.off?.('error', onError);
      options.signal?.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = () => settle();
    const onClose = () => settle(closed());
    const onError = (error: unknown) =>
      settle(
        (error as NodeJS.ErrnoException)?.code === 'EPIPE'
          ? closed()
          : new BlockIoError('EIO', `the output stream failed: ${(error as Error)?.message}`, {
              path,
            }),
      );
    const onAbort = () =>
      settle(
        new BlockIoError('ABORTED', 'operation cancelled while waiting for the output', { path }),
      );
    if (options.signal?.aborted) {
      onAbort();
      return;
    }
    stream.once('drain', onDrain);
    stream.once('close', onClose);
    stream.once('error', onError);
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
