import type { CommandContext } from '@x/blockio/cli';
import { listImages } from '@x/rbd-recover';
import type { ListOptions } from './list.js';
import { parsePoolNames } from './parse-options.js';

export async function runList(options: ListOptions, context: CommandContext): Promise<void> {
  const images = await listImages({
    workdir: options.workdir,
    pool: options.pool,
    poolNames: parsePoolNames(options.poolName),
    policy: options.perObject ? 'per-object' : 'per-pg',
  });
  if (context.json) {
    context.printJson(
      images.map((image) => ({
        pool: image.pool.id,
        poolName: image.pool.name ?? null,
        namespace: image.namespace,
        name: image.name,
        format: image.format,
        id: image.id ?? null,
      })),
    );
    return;
  }
  for (const image of images) {
    const namespace = image.namespace === '' ? '' : `${image.namespace}/`;
    context.print(`${image.pool.name ?? image.pool.id}/${namespace}${image.name}`);
  }
}
