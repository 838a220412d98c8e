import { seededBytes } from '@x/test-utils';
import fc from 'fast-check';
import { expect } from 'vitest';
import type { Qcow2Image } from '../../src/index.js';
import { firstDifference } from './support.js';

/**
 * Operations on a few whole clusters of an image open for writing, for properties
 * that check the image against a model (a Buffer of the guest's bytes).
 */
export type ClusterOp =
  | { kind: 'write'; cluster: number; at: number; length: number; seed: number }
  | { kind: 'zero'; cluster: number; clusters: number; unmap: boolean }
  | { kind: 'discard'; cluster: number; clusters: number }
  | { kind: 'compressed'; cluster: number; seed: number; repeat: number }
  | { kind: 'read'; cluster: number; at: number; length: number };

/** One arbitrary per kind of operation, over clusters 0 … `clusters` − 1. */
export function clusterOpArbitraries(clusterSize: number, clusters: number, partial = false) {
  const cluster = fc.integer({ min: 0, max: clusters - 1 });
  const at = fc.integer({ min: 0, max: clusterSize - 1 });
  // `partial`: mostly parts of a cluster. A partial write copies a compressed cluster
  // on write (inflating it) and frees it; a partial read keeps it inflated.
  const length = partial
    ? fc.oneof(
        { arbitrary: fc.integer({ min: 1, max: clusterSize / 4 }), weight: 3 },
        { arbitrary: fc.integer({ min: 1, max: clusterSize }), weight: 1 },
      )
    : fc.integer({ min: 1, max: clusterSize });
  const seed = fc.integer({ min: 1, max: 1e6 });
  const span = fc.integer({ min: 1, max: 2 });
  return {
    write: fc.record({ kind: fc.constant('write' as const), cluster, at, length, seed }),
    zero: fc.record({
      kind: fc.constant('zero' as const),
      cluster,
      clusters: span,
      unmap: fc.boolean(),
    }),
    discard: fc.record({ kind: fc.constant('discard' as const), cluster, clusters: span }),
    compressed: fc.record({
      kind: fc.constant('compressed' as const),
      cluster,
      seed,
      // How compressible: 1 does not shrink (stored plainly), 8 packs a few to a host
      // cluster, 64 many.
      repeat: fc.constantFrom(1, 8, 64),
    }),
    read: fc.record({ kind: fc.constant('read' as const), cluster, at, length }),
  };
}

/** Bytes that compress to a size set by `repeat`, different for every seed. */
export function compressibleSample(length: number, seed: number, repeat = 8): Buffer {
  const random = seededBytes(Math.ceil(length / repeat), seed);
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = random[Math.floor(i / repeat)] as number;
  return out;
}

/** Applies `op` to the image and to `model`; a read is checked against the model. */
export async function applyClusterOp(
  image: Qcow2Image,
  model: Buffer,
  op: ClusterOp,
  clusterSize: number,
): Promise<void> {
  const start = op.cluster * clusterSize;
  const span = (clusters: number) => Math.min(clusters * clusterSize, model.byteLength - start);
  if (op.kind === 'write') {
    const offset = start + op.at;
    const data = compressibleSample(Math.min(op.length, model.byteLength - offset), op.seed);
    await image.write(offset, data);
    data.copy(model, offset);
  } else if (op.kind === 'zero') {
    await image.writeZeroes(start, span(op.clusters), { unmap: op.unmap });
    model.fill(0, start, start + span(op.clusters));
  } else if (op.kind === 'discard') {
    // Whole clusters: a discard of part of one may leave the old bytes (as QEMU's).
    await image.discard(start, span(op.clusters));
    model.fill(0, start, start + span(op.clusters));
  } else if (op.kind === 'compressed') {
    const mapping = await image.mapGuestRange(start, clusterSize);
    // Like QEMU, compressed writes only go where the image holds no cluster.
    if (mapping.some((run) => run.type !== 'unallocated' && run.type !== 'zero-plain')) return;
    const data = compressibleSample(clusterSize, op.seed, op.repeat);
    await image.writeCompressed(start, data);
    data.copy(model, start);
  } else {
    const offset = start + op.at;
    const length = Math.min(op.length, model.byteLength - offset);
    const read = await image.read(offset, length);
    expect(firstDifference(read, model.subarray(offset, offset + length))).toBe(-1);
  }
}
