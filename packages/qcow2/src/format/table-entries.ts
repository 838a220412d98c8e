import { BlockIoError } from '@x/blockio';
import {
  HI_COMPRESSED,
  HI_COPIED,
  HI_OFFSET_MASK,
  LO_OFFSET_MASK,
  LO_ZERO,
  QCOW2_COMPRESSED_SECTOR_SIZE,
} from './constants.js';

/**
 * L1, L2 and refcount-table entries (qcow2.rst "Cluster mapping"). Entries are
 * handled as two 32-bit halves, `hi` (bits 32–63) and `lo` (bits 0–31), so the
 * loops that walk millions of them stay in fast integer arithmetic.
 */

const TWO_32 = 0x1_0000_0000;

/** What reading a guest cluster (or subcluster) yields. */
export type ClusterType =
  /** Not allocated here: read the backing file, or zeros. */
  | 'unallocated'
  /** Reads as zero, no host cluster. */
  | 'zero-plain'
  /** Reads as zero, host cluster preallocated (v3 zero flag with an offset). */
  | 'zero-alloc'
  /** Data in a host cluster. */
  | 'normal'
  /** Compressed data at an unaligned host offset. */
  | 'compressed';

/** Host offset in bits 9–55. May exceed 2^53 on corrupt input: compare it with the file size. */
export function entryOffset(hi: number, lo: number): number {
  return (hi & HI_OFFSET_MASK) * TWO_32 + ((lo & LO_OFFSET_MASK) >>> 0);
}

/** Host offset in bits 9–63 (refcount table entries have no flag bits). */
export function refcountTableEntryOffset(hi: number, lo: number): number {
  return (hi >>> 0) * TWO_32 + ((lo & LO_OFFSET_MASK) >>> 0);
}

export function isCopied(hi: number): boolean {
  return (hi & HI_COPIED) !== 0;
}

export function isCompressed(hi: number): boolean {
  return (hi & HI_COMPRESSED) !== 0;
}

export function hasZeroFlag(lo: number): boolean {
  return (lo & LO_ZERO) !== 0;
}

/** True when the entry's value (flags included) is zero. */
export function isEmptyEntry(hi: number, lo: number): boolean {
  return hi === 0 && lo === 0;
}

/** Reads entry `index` of a big-endian 64-bit table as its two halves. */
export function readEntryHalves(table: DataView, index: number): [hi: number, lo: number] {
  return [table.getUint32(index * 8, false), table.getUint32(index * 8 + 4, false)];
}

export function readEntry(table: DataView, index: number): bigint {
  return table.getBigUint64(index * 8, false);
}

export function writeEntry(table: DataView, index: number, value: bigint): void {
  table.setBigUint64(index * 8, value, false);
}

export function makeEntry(
  hostOffset: number,
  flags: { copied?: boolean; zero?: boolean } = {},
): bigint {
  let value = BigInt(hostOffset);
  if (flags.copied) value |= 1n << 63n;
  if (flags.zero) value |= 1n;
  return value;
}

/**
 * Classifies a standard (non-extended) L2 entry. Version 2 images have no zero
 * flag; a set bit 0 there is reported as corruption by `check`, not here.
 */
export function classifyL2Entry(hi: number, lo: number): ClusterType {
  if (isCompressed(hi)) return 'compressed';
  const offset = entryOffset(hi, lo);
  if (hasZeroFlag(lo)) return offset === 0 ? 'zero-plain' : 'zero-alloc';
  if (offset === 0) return 'unallocated';
  return 'normal';
}

/** Where a compressed cluster's bytes are (qcow2.rst "Compressed Clusters Descriptor"). */
export interface CompressedDescriptor {
  /** Byte offset of the compressed data (not aligned). */
  offset: number;
  /** Number of 512-byte sectors spanned, counted from the sector holding `offset`. */
  sectors: number;
  /** Bytes readable from `offset`: sectors * 512 - (offset % 512). */
  length: number;
}

/** Decodes bits 0–61 of a compressed L2 entry for the image's cluster_bits. */
export function decodeCompressedDescriptor(
  hi: number,
  lo: number,
  clusterBits: number,
): CompressedDescriptor {
  const descriptor = (BigInt(hi & 0x3fffffff) << 32n) | BigInt(lo >>> 0);
  const offsetBits = BigInt(62 - (clusterBits - 8));
  const offset = Number(descriptor & ((1n << offsetBits) - 1n));
  const sectors = Number(descriptor >> offsetBits) + 1;
  const length = sectors * QCOW2_COMPRESSED_SECTOR_SIZE - (offset % QCOW2_COMPRESSED_SECTOR_SIZE);
  return { offset, sectors, length };
}

/** Encodes a compressed L2 entry (COPIED is never set on compressed clusters). */
export function encodeCompressedEntry(
  offset: number,
  byteLength: number,
  clusterBits: number,
): bigint {
  const offsetBits = BigInt(62 - (clusterBits - 8));
  const firstSector = Math.floor(offset / QCOW2_COMPRESSED_SECTOR_SIZE);
  const lastSector = Math.floor((offset + byteLength - 1) / QCOW2_COMPRESSED_SECTOR_SIZE);
  const additionalSectors = BigInt(lastSector - firstSector);
  if (additionalSectors >> (62n - offsetBits) !== 0n) {
    throw new RangeError(`compressed data of ${byteLength} bytes does not fit the sector field`);
  }
  return (1n << 62n) | (additionalSectors << offsetBits) | BigInt(offset);
}

/** Extended L2: the subcluster bitmap (second 64-bit word). */
export interface SubclusterBitmap {
  /** Bit i set: subcluster i is allocated (bits 0–31 of the word). */
  allocated: number;
  /** Bit i set: subcluster i reads as zero (bits 32–63 of the word). */
  zero: number;
}

export function readSubclusterBitmap(table: DataView, index: number): SubclusterBitmap {
  // Extended entries are 16 bytes: the descriptor, then the bitmap.
  return {
    zero: table.getUint32(index * 16 + 8, false),
    allocated: table.getUint32(index * 16 + 12, false),
  };
}

/** The type of subcluster `sub` of an extended L2 entry; 'invalid' when both bits are set. */
export function classifySubcluster(
  hi: number,
  lo: number,
  bitmap: SubclusterBitmap,
  sub: number,
): ClusterType | 'invalid' {
  if (isCompressed(hi)) return 'compressed';
  const mask = (1 << sub) >>> 0;
  const allocated = (bitmap.allocated & mask) !== 0;
  const zero = (bitmap.zero & mask) !== 0;
  if (allocated && zero) return 'invalid';
  if (zero) return 'zero-plain';
  if (allocated) return entryOffset(hi, lo) === 0 ? 'invalid' : 'normal';
  return 'unallocated';
}

/**
 * What `readRefcount` returns for a 64-bit refcount of 2^53 or more. Every
 * count a tally can reach is below it, so comparisons with it stay exact; the
 * exact value is `readRefcountExact` (or `readRefcountValue` for reports).
 */
export const REFCOUNT_SATURATED = 2 ** 53;
const HI_SATURATED = REFCOUNT_SATURATED / TWO_32;

/**
 * Refcount block entries are refcount_bits = 1 << refcount_order wide. Below 8
 * bits they are packed LSB-first within each byte; 8 bits and up they are
 * big-endian words. A number is exact for every width up to 32 bits; a 64-bit
 * entry of 2^53 or more reads as REFCOUNT_SATURATED (hot loops compare numbers;
 * the rare huge value is read exactly only where it is reported or copied).
 */
export function readRefcount(block: Uint8Array, index: number, refcountOrder: number): number {
  switch (refcountOrder) {
    case 0:
    case 1:
    case 2: {
      const bits = 1 << refcountOrder;
      const bitOffset = index * bits;
      return ((block[bitOffset >>> 3] as number) >>> (bitOffset & 7)) & ((1 << bits) - 1);
    }
    case 3:
      return block[index] as number;
    case 4:
      return ((block[index * 2] as number) << 8) | (block[index * 2 + 1] as number);
    case 5:
      return new DataView(block.buffer, block.byteOffset).getUint32(index * 4, false);
    case 6: {
      const view = new DataView(block.buffer, block.byteOffset);
      const hi = view.getUint32(index * 8, false);
      // hi >= 2^21 means the value is >= 2^53: beyond what a number holds exactly.
      if (hi >= HI_SATURATED) return REFCOUNT_SATURATED;
      return hi * TWO_32 + view.getUint32(index * 8 + 4, false);
    }
    default:
      throw new RangeError(`refcount_order ${refcountOrder} is not 0..6`);
  }
}

/** The exact refcount, whatever the width. */
export function readRefcountExact(block: Uint8Array, index: number, refcountOrder: number): bigint {
  if (refcountOrder === 6) {
    return new DataView(block.buffer, block.byteOffset).getBigUint64(index * 8, false);
  }
  return BigInt(readRefcount(block, index, refcountOrder));
}

/**
 * The exact refcount as reports carry it: a number while it is a safe integer,
 * else a bigint (only 64-bit refcounts get there). JSON output then prints it as
 * a number or, above 2^53 - 1, a decimal string (the CLI's one rule for bigints).
 */
export function readRefcountValue(
  block: Uint8Array,
  index: number,
  refcountOrder: number,
): number | bigint {
  const value = readRefcount(block, index, refcountOrder);
  if (value < REFCOUNT_SATURATED) return value;
  return readRefcountExact(block, index, refcountOrder);
}

/**
 * Writes a refcount exactly or throws: a number must be a safe integer (a
 * larger one has already lost its low bits), a bigint may use all 64 bits.
 * Both must fit refcount_bits (OUT_OF_RANGE otherwise).
 */
export function writeRefcount(
  block: Uint8Array,
  index: number,
  refcountOrder: number,
  value: number | bigint,
): void {
  if (typeof value === 'bigint') {
    if (value < 0n || value >= 1n << BigInt(1 << refcountOrder))
      throw refcountOutOfRange(value, refcountOrder);
    if (refcountOrder === 6) {
      new DataView(block.buffer, block.byteOffset).setBigUint64(index * 8, value, false);
      return;
    }
    value = Number(value);
  } else if (!Number.isSafeInteger(value)) {
    throw new BlockIoError(
      'UNSAFE_INTEGER',
      `refcount ${value} is not an integer below 2^53: pass a bigint to write it exactly`,
      { structure: 'refcount block' },
    );
  }
  if (value < 0 || value > maxRefcount(refcountOrder))
    throw refcountOutOfRange(value, refcountOrder);
  switch (refcountOrder) {
    case 0:
    case 1:
    case 2: {
      const bits = 1 << refcountOrder;
      const bitOffset = index * bits;
      const mask = ((1 << bits) - 1) << (bitOffset & 7);
      const byte = block[bitOffset >>> 3] as number;
      block[bitOffset >>> 3] = (byte & ~mask) | ((value << (bitOffset & 7)) & mask);
      return;
    }
    case 3:
      block[index] = value;
      return;
    case 4:
      block[index * 2] = value >>> 8;
      block[index * 2 + 1] = value & 0xff;
      return;
    case 5:
      new DataView(block.buffer, block.byteOffset).setUint32(index * 4, value, false);
      return;
    case 6: {
      const view = new DataView(block.buffer, block.byteOffset);
      view.setUint32(index * 8, Math.floor(value / TWO_32), false);
      view.setUint32(index * 8 + 4, value >>> 0, false);
      return;
    }
    default:
      throw new RangeError(`refcount_order ${refcountOrder} is not 0..6`);
  }
}

function refcountOutOfRange(value: number | bigint, refcountOrder: number): BlockIoError {
  return new BlockIoError(
    'OUT_OF_RANGE',
    `refcount ${value} does not fit ${1 << refcountOrder} bits`,
    { structure: 'refcount block' },
  );
}

/** Copies one refcount entry between blocks of the same width, bit for bit. */
export function copyRefcount(
  from: Uint8Array,
  fromIndex: number,
  to: Uint8Array,
  toIndex: number,
  refcountOrder: number,
): void {
  writeRefcount(to, toIndex, refcountOrder, readRefcountExact(from, fromIndex, refcountOrder));
}

/**
 * Largest refcount a writer sets (2^bits - 1; capped at 2^53 - 1 for 64-bit,
 * far above any count of references a file can hold).
 */
export function maxRefcount(refcountOrder: number): number {
  const bits = 1 << refcountOrder;
  return bits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** bits - 1;
}

/** Reads the first word of L2 entry `index` (16-byte entries in extended-L2 images). */
export function readL2Halves(
  table: DataView,
  index: number,
  extendedL2: boolean,
): [hi: number, lo: number] {
  const at = index * (extendedL2 ? 16 : 8);
  return [table.getUint32(at, false), table.getUint32(at + 4, false)];
}
