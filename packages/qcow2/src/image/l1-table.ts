import type { BlockDevice } from '@x/blockio';
import { Qcow2Error } from '../errors.js';
import { QCOW_MAX_L1_SIZE } from '../format/constants.js';
import type { Qcow2Geometry } from '../format/geometry.js';
import { entryOffset } from '../format/table-entries.js';

/** Bits of an L1 entry that must be zero (0–8 and 56–62), split into halves. */
const L1_RESERVED_HI = 0x7f000000;
const L1_RESERVED_LO = 0x000001ff;

/**
 * An L1 table held in memory (QEMU caps it at 32 MiB, checked before we
 * allocate). Entries are validated when looked up, not when loaded, so a table
 * with one bad entry still serves every other L2 table.
 */
export class L1Table {
  /** Host offset of the table in the image file. */
  readonly offset: number;
  /** Number of entries. */
  readonly size: number;
  readonly bytes: Buffer;
  readonly #view: DataView;
  readonly #path: string;
  readonly #structure: string;

  constructor(offset: number, bytes: Buffer, path: string, structure = 'L1 table') {
    this.offset = offset;
    this.bytes = bytes;
    this.size = bytes.byteLength / 8;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#path = path;
    this.#structure = structure;
  }

  /** Reads `entries` entries at `offset`, refusing anything over QEMU's limit first. */
  static async load(
    file: BlockDevice,
    offset: number,
    entries: number,
    structure = 'L1 table',
  ): Promise<L1Table> {
    const where = { path: file.name, offset, structure };
    if (entries * 8 > QCOW_MAX_L1_SIZE) {
      throw new Qcow2Error(
        'TOO_LARGE',
        `${structure} of ${entries} entries exceeds QEMU's 32 MiB limit`,
        where,
      );
    }
    const length = entries * 8;
    if (entries > 0 && (offset === 0 || offset + length > file.size)) {
      throw new Qcow2Error(
        'CORRUPT',
        `${structure} at 0x${offset.toString(16)} (${length} bytes) does not lie within the ${file.size}-byte file`,
        where,
      );
    }
    const bytes = Buffer.alloc(length);
    if (length > 0) await file.read(offset, bytes);
    return new L1Table(offset, bytes, file.name, structure);
  }

  high(index: number): number {
    return this.#view.getUint32(index * 8, false);
  }

  low(index: number): number {
    return this.#view.getUint32(index * 8 + 4, false);
  }

  entry(index: number): bigint {
    return this.#view.getBigUint64(index * 8, false);
  }

  /** Sets entry `index` in memory; the writer persists it with `writeEntries`. */
  setEntry(index: number, value: bigint): void {
    this.#view.setBigUint64(index * 8, value, false);
  }

  /** Writes entries [from, to) back to the image file. */
  async writeEntries(file: BlockDevice, from: number, to = from + 1): Promise<void> {
    await file.write(this.offset + from * 8, this.bytes.subarray(from * 8, to * 8));
  }

  /**
   * Host offset of the L2 table for L1 index `index`, or 0 when that range is
   * unallocated (or beyond the table). Throws CORRUPT when the entry has
   * reserved bits set, is not cluster aligned, or points outside `fileSize`.
   */
  l2Offset(index: number, geometry: Qcow2Geometry, fileSize: number): number {
    if (index >= this.size) return 0;
    const hi = this.high(index);
    const lo = this.low(index);
    const offset = entryOffset(hi, lo);
    if (offset === 0 && (hi & L1_RESERVED_HI) === 0 && (lo & L1_RESERVED_LO) === 0) return 0;
    const where = {
      path: this.#path,
      offset: this.offset + index * 8,
      structure: `${this.#structure} entry ${index}`,
    };
    if ((hi & L1_RESERVED_HI) !== 0 || (lo & L1_RESERVED_LO) !== 0) {
      throw new Qcow2Error(
        'CORRUPT',
        `L1 entry 0x${this.entry(index).toString(16)} has reserved bits set`,
        where,
      );
    }
    if (!geometry.isClusterAligned(offset)) {
      throw new Qcow2Error(
        'CORRUPT',
        `L2 table offset 0x${offset.toString(16)} is not cluster aligned`,
        where,
      );
    }
    if (offset + geometry.clusterSize > fileSize) {
      throw new Qcow2Error(
        'CORRUPT',
        `L2 table offset 0x${offset.toString(16)} points past the end of the ${fileSize}-byte file (it maps guest bytes 0x${(index * geometry.l2Coverage).toString(16)}..0x${((index + 1) * geometry.l2Coverage).toString(16)}); qcow2 convert --salvage reads them as QEMU does and lists them`,
        where,
      );
    }
    return offset;
  }
}
