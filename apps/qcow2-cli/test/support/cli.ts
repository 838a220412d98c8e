import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BinResult, cachedFixture, runBin, runPeerOk } from '@x/test-utils';

export const APP_ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const BIN = join(APP_ROOT, 'bin', 'qcow2.js');

export type CliResult = BinResult;

/** Runs the built `qcow2` bin as a child process. */
export function qcow2(...args: string[]): Promise<CliResult> {
  return runBin(BIN, args);
}

/** A qemu-made image (create + qemu-io writes), cached under the app's .fixtures/. */
export async function qemuImage(
  name: string,
  size: string,
  commands: string[],
  options?: string,
): Promise<string> {
  const recipe = JSON.stringify({ size, commands, options });
  const directory = await cachedFixture(APP_ROOT, name, recipe, async (dir) => {
    const image = join(dir, `${name}.qcow2`);
    await runPeerOk('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      ...(options ? ['-o', options] : []),
      image,
      size,
    ]);
    if (commands.length > 0)
      await runPeerOk('qemu-io', [...commands.flatMap((c) => ['-c', c]), image]);
  });
  return join(directory, `${name}.qcow2`);
}
