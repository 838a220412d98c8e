import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedFixture, runPeerOk } from '@x/test-utils';

/** The package root: fixtures are cached under its `.fixtures/`. */
export const PACKAGE_ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

export const qemuImg = (...args: string[]) => runPeerOk('qemu-img', args);
export const qemuIo = (image: string, ...commands: string[]) =>
  runPeerOk('qemu-io', [...commands.flatMap((command) => ['-c', command]), image]);

/**
 * A qcow2 image made by the real qemu-img/qemu-io from a recipe: `create` options
 * and the qemu-io commands to run on it. Cached by recipe.
 */
export async function qemuImage(
  name: string,
  recipe: { size: string; options?: string; commands?: string[]; snapshots?: string[] },
): Promise<string> {
  const directory = await cachedFixture(PACKAGE_ROOT, name, JSON.stringify(recipe), async (dir) => {
    const image = join(dir, `${name}.qcow2`);
    const options = recipe.options ? ['-o', recipe.options] : [];
    await qemuImg('create', '-q', '-f', 'qcow2', ...options, image, recipe.size);
    if (recipe.commands?.length) await qemuIo(image, ...recipe.commands);
    for (const snapshot of recipe.snapshots ?? []) await qemuImg('snapshot', '-c', snapshot, image);
  });
  return join(directory, `${name}.qcow2`);
}
