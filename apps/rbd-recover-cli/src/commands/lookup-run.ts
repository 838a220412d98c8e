import type { CommandContext } from '@x/blockio/cli';
import { describePool, type ImageInfo, lookupImage, parseImageSpec } from '@x/rbd-recover';
import type { LookupOptions } from './lookup.js';
import { asUsage, manualFromFlags, parsePoolNames } from './parse-options.js';

export async function runLookup(
  text: string,
  options: LookupOptions,
  context: CommandContext,
): Promise<void> {
  const manual = manualFromFlags(options);
  const spec = await asUsage(async () => parseImageSpec(text));
  const image = await lookupImage(spec, {
    workdir: options.workdir,
    manual,
    poolNames: parsePoolNames(options.poolName),
    policy: options.perObject ? 'per-object' : 'per-pg',
  });
  const snapshot =
    spec.snapshot === undefined ? undefined : image.snapshots.find((s) => s.name === spec.snapshot);
  if (spec.snapshot !== undefined && snapshot === undefined) {
    const { RbdRecoverError } = await import('@x/rbd-recover');
    throw new RbdRecoverError(
      'NOT_FOUND',
      `image "${image.name}" has no snapshot "${spec.snapshot}"`,
    );
  }
  if (context.json) {
    context.printJson({ ...imageJson(image), snapshot: snapshot ?? null });
    return;
  }
  printImage(context.print, image);
  if (snapshot)
    context.print(`selected snapshot: ${snapshot.name} (id ${snapshot.id}, size ${snapshot.size})`);
  for (const problem of image.problems) context.warn(problem);
}

export function imageJson(image: ImageInfo): Record<string, unknown> {
  return {
    pool: image.pool.id,
    poolName: image.pool.name ?? null,
    namespace: image.namespace,
    name: image.name,
    format: image.format,
    id: image.id ?? null,
    prefix: image.prefix,
    order: image.order,
    objectSize: 2 ** image.order,
    size: image.size,
    features: image.features ?? null,
    snapSeq: image.snapSeq ?? null,
    snapshots: image.snapshots,
    inferred: image.inferred,
    problems: image.problems,
  };
}

/** The original tool's layout, one fact per line, the snapshot table tab-separated. */
function printImage(print: (line: string) => void, image: ImageInfo): void {
  print(`image: ${image.name}`);
  print(`pool: ${describePool(image.pool)}`);
  if (image.namespace !== '') print(`namespace: ${image.namespace}`);
  print(`format: ${image.format}`);
  if (image.id !== undefined) print(`id: ${image.id}`);
  print(`prefix: ${image.prefix}`);
  print(`order: ${image.order} (${2 ** image.order} byte objects)`);
  print(`size: ${image.size}`);
  if (image.features !== undefined) print(`features: 0x${image.features.toString(16)}`);
  if (image.snapSeq !== undefined) print(`snap_seq: ${image.snapSeq}`);
  if (image.inferred) print('metadata: given by hand or inferred from object names');
  if (image.snapshots.length > 0) {
    print('snapshot:\tid\tname\t\tsize');
    for (const snap of image.snapshots)
      print(`snapshot:\t${snap.id}\t${snap.name}\t\t${snap.size}`);
  }
}
