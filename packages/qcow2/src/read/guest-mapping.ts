import { Qcow2Error } from '../errors.js';
import { HI_COMPRESSED, HI_COPIED, LO_ZERO } from '../format/constants.js';
import type { Qcow2Geometry } from '../format/geometry.js';
import {
  type CompressedDescriptor,
  decodeCompressedDescriptor,
  entryOffset,
} from '../format/table-entries.js';
import type { SalvageLog } from './salvage-log.js';

/** What one run of guest bytes maps to in this image (not looking at backing files). */
export type MappingType =
  /** Data in the (internal or external) data file at `hostOffset`. */
  | 'normal'
  /** Reads as zero; no host cluster. */
  | 'zero-plain'
  /** Reads as zero; a host cluster is preallocated at `hostOffset`. */
  | 'zero-alloc'
  /** Not allocated here: falls through to the backing file, or zeros. */
  | 'unallocated'
  /** Part of one compressed cluster. */
  | 'compressed';

export interface GuestMapping {
  /** Guest offset of the run. */
  offset: number;
  length: number;
  type: MappingType;
  /**
   * Host offset of `offset` in the data file when a host cluster backs the run:
   * always for normal and zero-alloc runs, and for unallocated subclusters of an
   * allocated extended-L2 cluster. Undefined otherwise (0 is a valid offset in
   * external data files).
   */
  hostOffset: number | undefined;
  /** Compressed runs: where the compressed bytes are (host file) and the guest cluster start. */
  compressed?: { descriptor: CompressedDescriptor; clusterOffset: number } | undefined;
}

/** Facts about the image a lookup needs; sizes are read at call time (writers grow files). */
export interface MappingContext {
  readonly path: string;
  readonly geometry: Qcow2Geometry;
  /** The image keeps guest data in an external data file. */
  readonly hasDataFile: boolean;
  /** Current size of the qcow2 file (compressed data lives there). */
  hostFileSize(): number;
  /** Current size of the file normal clusters live in. */
  dataFileSize(): number;
  /**
   * Salvaging read: data past the end of the data file reads as zeros (as in
   * QEMU) and is recorded here, instead of being refused as CORRUPT.
   */
  readonly salvage?: SalvageLog | undefined;
}

/**
 * Appends the mappings of guest range [start, end) — which must lie within one
 * L2 table's coverage — to `out`, merging with the last run when the type
 * matches and guest and host offsets continue. `table` is the L2 table (or
 * undefined when the L1 entry is empty); `l2Offset` locates it for errors.
 */
export function mapL2Range(
  context: MappingContext,
  table: Buffer | undefined,
  l2Offset: number,
  start: number,
  end: number,
  out: GuestMapping[],
): void {
  if (table === undefined) {
    pushRun(out, start, end - start, 'unallocated', undefined);
    return;
  }
  const { geometry } = context;
  const clusterSize = geometry.clusterSize;
  const entrySize = geometry.l2EntrySize;
  let position = start;
  let index = 0;
  let at = 0;
  // One closure per call, not per entry: it names the entry being looked at.
  const where = () => ({
    path: context.path,
    offset: l2Offset + at,
    structure: `L2 table at 0x${l2Offset.toString(16)} entry ${index}`,
  });
  while (position < end) {
    const clusterStart = position - (position % clusterSize);
    const clusterEnd = Math.min(clusterStart + clusterSize, end);
    index = geometry.l2Index(position);
    at = index * entrySize;
    const hi = table.readUInt32BE(at);
    const lo = table.readUInt32BE(at + 4);

    if ((hi & HI_COMPRESSED) !== 0) {
      if (context.hasDataFile) {
        throw new Qcow2Error(
          'CORRUPT',
          'compressed cluster in an image with an external data file',
          where(),
        );
      }
      const descriptor = decodeCompressedDescriptor(hi, lo, geometry.clusterBits);
      if (descriptor.offset === 0 || descriptor.offset >= context.hostFileSize()) {
        throw new Qcow2Error(
          'CORRUPT',
          `compressed cluster data at 0x${descriptor.offset.toString(16)} lies outside the ${context.hostFileSize()}-byte file`,
          where(),
        );
      }
      out.push({
        offset: position,
        length: clusterEnd - position,
        type: 'compressed',
        hostOffset: undefined,
        compressed: { descriptor, clusterOffset: clusterStart },
      });
      position = clusterEnd;
      continue;
    }

    const host = entryOffset(hi, lo);
    // Offset 0 is ambiguous with external data files, where it is a valid host
    // offset; there every cluster has refcount 1, so COPIED tells them apart.
    const hasHost = host !== 0 || (context.hasDataFile && (hi & HI_COPIED) !== 0);
    if (hasHost) checkHostCluster(context, host, where);

    if (!geometry.extendedL2) {
      const type: MappingType =
        (lo & LO_ZERO) !== 0
          ? hasHost
            ? 'zero-alloc'
            : 'zero-plain'
          : hasHost
            ? 'normal'
            : 'unallocated';
      if (type === 'normal') {
        const length = clusterEnd - position;
        const present = dataPresent(
          context,
          host + (position - clusterStart),
          length,
          where,
          position,
        );
        if (present < length) {
          pushSalvaged(out, position, present, host + (position - clusterStart), length);
          position = clusterEnd;
          continue;
        }
      }
      pushRun(
        out,
        position,
        clusterEnd - position,
        type,
        hasHost ? host + (position - clusterStart) : undefined,
      );
      position = clusterEnd;
      continue;
    }

    // Extended L2: the second word holds the subcluster bitmap.
    const zeroBits = table.readUInt32BE(at + 8);
    const allocatedBits = table.readUInt32BE(at + 12);
    const subclusterSize = geometry.subclusterSize;
    while (position < clusterEnd) {
      const sub = Math.floor((position - clusterStart) / subclusterSize);
      const subEnd = Math.min(clusterStart + (sub + 1) * subclusterSize, clusterEnd);
      const mask = (1 << sub) >>> 0;
      const allocated = (allocatedBits & mask) !== 0;
      const zero = (zeroBits & mask) !== 0;
      if (allocated && (zero || !hasHost)) {
        throw new Qcow2Error(
          'CORRUPT',
          zero
            ? `subcluster ${sub} is marked both allocated and zero`
            : `subcluster ${sub} is marked allocated but the cluster has no host offset`,
          where(),
        );
      }
      const type: MappingType = zero
        ? hasHost
          ? 'zero-alloc'
          : 'zero-plain'
        : allocated
          ? 'normal'
          : 'unallocated';
      if (type === 'normal') {
        const length = subEnd - position;
        const present = dataPresent(
          context,
          host + (position - clusterStart),
          length,
          where,
          position,
        );
        if (present < length) {
          pushSalvaged(out, position, present, host + (position - clusterStart), length);
          position = subEnd;
          continue;
        }
      }
      pushRun(
        out,
        position,
        subEnd - position,
        type,
        hasHost ? host + (position - clusterStart) : undefined,
      );
      position = subEnd;
    }
  }
}

function checkHostCluster(
  context: MappingContext,
  host: number,
  where: () => { path: string; offset: number; structure: string },
): void {
  const { geometry } = context;
  if (!geometry.isClusterAligned(host)) {
    throw new Qcow2Error(
      'CORRUPT',
      `cluster allocation offset 0x${host.toString(16)} is not cluster aligned`,
      where(),
    );
  }
}

/**
 * A normal run's bytes must exist in the data file (extended L2 images may end
 * mid-cluster). Returns how many of `length` bytes do: all of them, or (only
 * when salvaging, after recording the rest) fewer.
 */
function dataPresent(
  context: MappingContext,
  host: number,
  length: number,
  where: () => { path: string; offset: number; structure: string },
  guestOffset: number,
): number {
  const size = context.dataFileSize();
  if (Number.isSafeInteger(host + length) && host + length <= size) return length;
  const present = Math.max(0, Math.min(length, size - host));
  const located = where();
  if (!context.salvage) {
    throw new Qcow2Error(
      'CORRUPT',
      `cluster data at host offset 0x${host.toString(16)} lies past the end of the ${size}-byte ${context.hasDataFile ? 'data file' : 'file'} (guest bytes 0x${(guestOffset + present).toString(16)}..0x${(guestOffset + length).toString(16)}); qcow2 convert --salvage reads them as zeros, as QEMU does, and lists them`,
      located,
    );
  }
  context.salvage.record({
    guestOffset: guestOffset + present,
    length: length - present,
    reason: 'data-past-end',
    structure: located.structure,
    hostOffset: host,
    path: located.path,
    readsAs: 'zeros',
  });
  return present;
}

/** A normal run cut short by the end of the file: the part that exists, then zeros. */
function pushSalvaged(
  out: GuestMapping[],
  position: number,
  present: number,
  host: number,
  length: number,
): void {
  if (present > 0) pushRun(out, position, present, 'normal', host);
  pushRun(out, position + present, length - present, 'zero-plain', undefined);
}

function pushRun(
  out: GuestMapping[],
  offset: number,
  length: number,
  type: MappingType,
  hostOffset: number | undefined,
): void {
  const last = out[out.length - 1];
  if (
    last !== undefined &&
    last.type === type &&
    last.offset + last.length === offset &&
    (last.hostOffset === undefined
      ? hostOffset === undefined
      : last.hostOffset + last.length === hostOffset)
  ) {
    last.length += length;
    return;
  }
  out.push({ offset, length, type, hostOffset });
}
