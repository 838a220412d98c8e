import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { makeTempDir, type TempDir } from '@x/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { moduleWorkerData, moduleWorkerUrl, startModuleWorker } from '../src/index.js';

let scratch: TempDir;
beforeEach(async () => {
  scratch = await makeTempDir('blockio-worker-');
});
afterEach(async () => {
  await scratch.remove();
});

// The built blockio: the worker is plain Node and cannot load this package's TypeScript.
const builtBlockio = pathToFileURL(
  join(fileURLToPath(import.meta.url), '..', '..', 'dist', 'index.js'),
).href;

describe('module workers', () => {
  it('a JavaScript module is its own worker file; TypeScript maps to its dist/ twin when built', async () => {
    const js = pathToFileURL(scratch.file('pkg/dist/a.js')).href;
    expect(moduleWorkerUrl(js)?.href).toBe(js);
    const ts = pathToFileURL(scratch.file('pkg/src/sub/b.ts')).href;
    expect(moduleWorkerUrl(ts)).toBeUndefined();
    await mkdir(scratch.file('pkg/dist/sub'), { recursive: true });
    await writeFile(scratch.file('pkg/dist/sub/b.js'), '');
    expect(moduleWorkerUrl(ts)?.href).toBe(pathToFileURL(scratch.file('pkg/dist/sub/b.js')).href);
    expect(moduleWorkerUrl('data:text/javascript,1')).toBeUndefined();
  });

  it('the module starts only in a worker started for its tag, with the data given', async () => {
    const file = scratch.file('echo.mjs');
    await writeFile(
      file,
      `import { parentPort } from 'node:worker_threads';
import { moduleWorkerData } from ${JSON.stringify(builtBlockio)};
const data = moduleWorkerData('echo');
if (data !== undefined) parentPort.postMessage({ got: data });
else parentPort.postMessage({ got: 'nothing' });
`,
    );
    const answer = (tag: string) =>
      new Promise((resolve, reject) => {
        const worker = startModuleWorker(pathToFileURL(file), tag, { n: 7 });
        worker.once('message', (message) => {
          resolve(message);
          void worker.terminate();
        });
        worker.once('error', reject);
      });
    expect(await answer('echo')).toEqual({ got: { n: 7 } });
    expect(await answer('other')).toEqual({ got: 'nothing' });
    expect(moduleWorkerData('echo')).toBeUndefined(); // the main thread is never a worker
  });
});
