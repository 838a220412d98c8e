import { type BlockDevice, type ByteRange, deviceExtents, type Extent } from '@x/blockio';
import type { Qcow2ImageState } from '../image/image-state.js';
import type { GuestMapping, MappingType } from './guest-mapping.js';

const KIND: Record<MappingType, Extent['kind']> = {
  normal: 'data',
  compressed: 'data',
  'zero-plain': 'zero',
  'zero-alloc': 'zero',
  unallocated: 'unallocated',
};

/**
 * The extents of `range` as the guest sees them, merged: this image's runs,
 * with unallocated runs replaced by what the backing device reports there (and
 * `zero` past the end of a shorter backing file).
 */
export async function* guestExtents(
  image: Qcow2ImageState,
  range: ByteRange,
): AsyncIterable<Extent> {
  const end = range.offset + range.length;
  const coverage = image.geometry.l2Coverage;
  const runs: GuestMapping[] = [];
  let pending: { offset: number; length: number; kind: Extent['kind'] } | undefined;
  let position = range.offset;
  while (position < end) {
    const sliceEnd = Math.min(end, (Math.floor(position / coverage) + 1) * coverage);
    runs.length = 0;
    await image.mapWithinL2(position, sliceEnd, runs);
    for (const run of runs) {
      const pieces =
        run.type === 'unallocated' && image.backing
          ? backingExtents(image.backing, run.offset, run.length)
          : [{ offset: run.offset, length: run.length, kind: KIND[run.type] }];
      for await (const piece of pieces) {
        if (
          pending &&
          pending.kind === piece.kind &&
          pending.offset + pending.length === piece.offset
        ) {
          pending.length += piece.length;
          continue;
        }
        if (pending) yield pending;
        pending = { offset: piece.offset, length: piece.length, kind: piece.kind };
      }
    }
    position = sliceEnd;
  }
  if (pending) yield pending;
}

async function* backingExtents(
  backing: BlockDevice,
  offset: number,
  length: number,
): AsyncIterable<Extent> {
  const inside = Math.max(0, Math.min(length, backing.size - offset));
  if (inside > 0) yield* deviceExtents(backing, { offset, length: inside });
  if (inside < length) yield { offset: offset + inside, length: length - inside, kind: 'zero' };
}
