import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Worker, WorkerOptions } from 'node:worker_threads';

/**
 * Worker threads whose code is an ordinary module of the package, found by its own
 * `import.meta.url`: that URL is right in tsc's `dist/` and in an esbuild bundle (a
 * module reached by `import()` becomes a chunk of its own there, and its
 * `import.meta.url` names that chunk), so no bundler needs to know about workers.
 * The module starts its work at load time when `moduleWorkerData(tag)` answers.
 */
const TAG = '@x/blockio:module-worker';

// node:worker_threads is loaded on first use, not imported: @x/blockio's index is on
// every CLI's start-up path and most commands never start a worker.
const workerThreads = () => process.getBuiltinModule('node:worker_threads');

interface Envelope {
  readonly [TAG]: string;
  readonly data: unknown;
}

/**
 * The file a worker can load for the module at `moduleUrl`: the module itself when it
 * is JavaScript; for TypeScript sources run by a test runner (`…/src/a/b.ts`), which
 * a worker cannot load, the built twin `…/dist/a/b.js` when it exists. `undefined`
 * when there is none (the caller then does the work on its own thread).
 */
export function moduleWorkerUrl(moduleUrl: string): URL | undefined {
  const url = new URL(moduleUrl);
  if (url.protocol !== 'file:') return undefined;
  if (!/\.[cm]?ts$/.test(url.pathname)) return url;
  const path = fileURLToPath(url);
  const source = /[\\/]src[\\/](?!.*[\\/]src[\\/])/.exec(path);
  if (source === null) return undefined;
  const rest = path.slice(source.index + source[0].length).replace(/\.([cm]?)ts$/, '.$1js');
  const built = join(path.slice(0, source.index), 'dist', rest);
  return existsSync(built) ? pathToFileURL(built) : undefined;
}

/** Starts a worker running the module at `url` (see `moduleWorkerUrl`) with `data` for `tag`. */
export function startModuleWorker(
  url: URL,
  tag: string,
  data: unknown,
  options: Omit<WorkerOptions, 'workerData' | 'eval'> = {},
): Worker {
  const envelope: Envelope = { [TAG]: tag, data };
  return new (workerThreads().Worker)(url, { ...options, workerData: envelope });
}

/**
 * In a worker started by `startModuleWorker` for `tag`: its data. Elsewhere
 * (the main thread, or a worker of another module that loaded this one): undefined.
 */
export function moduleWorkerData<T>(tag: string): T | undefined {
  const { isMainThread, workerData } = workerThreads();
  if (isMainThread) return undefined;
  const envelope = workerData as Partial<Envelope> | null | undefined;
  if (typeof envelope !== 'object' || envelope === null || envelope[TAG] !== tag) return undefined;
  return envelope.data as T;
}
