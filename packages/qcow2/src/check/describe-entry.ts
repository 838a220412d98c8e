import { decodeCompressedDescriptor, entryOffset } from '../format/table-entries.js';
import { entryHex } from './stored-refcounts.js';

/** What an L2 entry says, for dumps. */
export interface L2EntryDescription {
  entry: string;
  type: 'unallocated' | 'zero-plain' | 'zero-alloc' | 'normal' | 'compressed';
  /** Host offset of the cluster (compressed: of the compressed data). */
  hostOffset: number;
  copied: boolean;
  /** Extended L2: the subcluster bitmap, hex (zero half then allocated half). */
  bitmap?: string | undefined;
  /** Compressed: bytes spanned by the compressed data. */
  compressedLength?: number | undefined;
}

/** Describes an L2 entry from its halves (b0/b1: the extended L2 bitmap words, else undefined). */
export function describeL2Entry(
  hi: number,
  lo: number,
  clusterBits: number,
  b0?: number,
  b1?: number,
): L2EntryDescription {
  const copied = (hi & 0x80000000) !== 0;
  const bitmap = b0 === undefined || b1 === undefined ? undefined : entryHex(b0, b1);
  if ((hi & 0x40000000) !== 0) {
    const descriptor = decodeCompressedDescriptor(hi, lo, clusterBits);
    return {
      entry: entryHex(hi, lo),
      type: 'compressed',
      hostOffset: descriptor.offset,
      copied,
      bitmap,
      compressedLength: descriptor.length,
    };
  }
  const offset = entryOffset(hi, lo);
  const type =
    (lo & 1) !== 0
      ? offset === 0
        ? 'zero-plain'
        : 'zero-alloc'
      : offset === 0
        ? 'unallocated'
        : 'normal';
  return { entry: entryHex(hi, lo), type, hostOffset: offset, copied, bitmap };
}
