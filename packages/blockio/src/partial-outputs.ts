import { unlinkSync } from 'node:fs';

/**
 * The temporary files of outputs being written in this process (`<output>.partial`),
 * so that a CLI that must exit at once (a second Ctrl-C) can still remove them
 * synchronously instead of leaving them behind. Kept on `globalThis` under a
 * registered symbol: a process that loads two copies of this package (an app's
 * bundle and a library from node_modules) still has one list.
 */
const REGISTRY = Symbol.for('@x/blockio.partialOutputs');

function registry(): Set<string> {
  const holder = globalThis as { [REGISTRY]?: Set<string> };
  holder[REGISTRY] ??= new Set();
  return holder[REGISTRY];
}

/**
 * Records that `path` is a temporary file this process may leave behind; call the
 * returned function once it was renamed into place or removed. Register before the
 * file is created, so that no moment exists where it is on disk and not on the list.
 */
export function trackPartialOutput(path: string): () => void {
  const paths = registry();
  paths.add(path);
  return () => {
    paths.delete(path);
  };
}

/**
 * Removes every temporary file still on the list, synchronously (for a process
 * about to exit from a signal handler). Returns the paths it removed.
 */
export function removePartialOutputsSync(): string[] {
  const removed: string[] = [];
  for (const path of registry()) {
    try {
      unlinkSync(path);
      removed.push(path);
    } catch {
      // Already renamed into place or removed: nothing is left behind.
    }
  }
  registry().clear();
  return removed;
}
