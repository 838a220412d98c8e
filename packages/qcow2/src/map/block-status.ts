import { type BlockDevice, type FileDataMap, FileDevice, mapFileData } from '@x/blockio';
import { RawBackingFile } from '../backing/raw-backing-file.js';
import { Qcow2Image } from '../image/qcow2-image.js';
import type { GuestMapping } from '../read/guest-mapping.js';
import { detectMetadataPreallocation } from './metadata-preallocation.js';

/** QEMU's BDRV_BLOCK_* bits, as far as qemu-img map and convert look at them. */
export const STATUS_DATA = 1;
export const STATUS_ZERO = 2;
export const STATUS_OFFSET_VALID = 4;
export const STATUS_ALLOCATED = 8;
/** The answer reaches the end of the device (BDRV_BLOCK_EOF); only statusAbove sets it. */
export const STATUS_EOF = 16;

/** Block status is asked and answered in whole sectors except at the device's end. */
const SECTOR = 512;

/** One answer of the block status of a device in the chain (bdrv_co_block_status). */
export interface BlockStatus {
  flags: number;
  /** Bytes from the asked offset that share this status (QEMU's pnum). */
  length: number;
  /** Host offset when STATUS_OFFSET_VALID. */
  map: number;
  /** The file holding the bytes at `map`. */
  file: string | undefined;
  compressed: boolean;
}

/** The status of a run, with how far down the backing chain it was found. */
export interface ChainStatus extends BlockStatus {
  /** 0 = the top device, 1.. = that many levels down the backing chain. */
  depth: number;
}

/** Per-device state: the last L2 slice's runs and the lazily learnt file facts. */
class Layer {
  readonly device: BlockDevice;
  readonly below: BlockDevice | undefined;
  #runs: GuestMapping[] = [];
  #sliceStart = 0;
  #sliceEnd = 0;
  #preallocated: Promise<boolean> | undefined;
  #fileMap: Promise<FileDataMap | undefined> | undefined;

  constructor(device: BlockDevice) {
    this.device = device;
    this.below = device instanceof Qcow2Image ? device.backing : undefined;
  }

  async status(offset: number, bytes: number): Promise<BlockStatus> {
    const length = Math.min(bytes, this.device.size - offset);
    const device = this.device;
    if (device instanceof Qcow2Image) return this.#qcow2Status(device, offset, length);
    if (device instanceof RawBackingFile || (device instanceof FileDevice && !device.isBlockDevice))
      return this.#rawStatus(device, offset, length);
    return this.#extentStatus(device, offset, length);
  }

  /**
   * Any other device (a convert source the caller opened): what its
   * `extents()` says, data when it cannot tell. A zero or unallocated run is
   * cut down to whole sectors from `offset` (callers count in sectors and round
   * up), so a sector that holds any data is never taken for zeros.
   */
  async #extentStatus(device: BlockDevice, offset: number, bytes: number): Promise<BlockStatus> {
    const status = { flags: STATUS_DATA | STATUS_ALLOCATED, length: bytes, map: 0 };
    if (device.extents) {
      for await (const extent of device.extents({ offset, length: bytes })) {
        const run = Math.min(bytes, extent.offset + extent.length - offset);
        const wholeSectors = run - (run % SECTOR);
        if (extent.kind === 'data' || extent.offset > offset) status.length = Math.max(run, 1);
        else if (wholeSectors === 0) status.length = Math.min(bytes, SECTOR);
        else {
          status.length = wholeSectors;
          // Unallocated with nothing below reads as zeros, as QEMU reports it.
          status.flags = extent.kind === 'zero' ? STATUS_ZERO | STATUS_ALLOCATED : STATUS_ZERO;
        }
        break;
      }
    }
    return { ...status, file: undefined, compressed: false };
  }

  async #qcow2Status(image: Qcow2Image, offset: number, bytes: number): Promise<BlockStatus> {
    const run = await this.#runAt(image, offset);
    let length = Math.min(bytes, run.offset + run.length - offset);
    let flags = 0;
    let map = 0;
    const host = run.hostOffset === undefined ? undefined : run.hostOffset + (offset - run.offset);
    if (host !== undefined) {
      flags |= STATUS_OFFSET_VALID;
      map = host;
    }
    if (run.type === 'zero-plain' || run.type === 'zero-alloc') flags |= STATUS_ZERO;
    else if (run.type === 'normal' || run.type === 'compressed') flags |= STATUS_DATA;

    // QEMU asks the file system about data clusters of metadata-preallocated
    // images only (BDRV_BLOCK_RECURSE), so unwritten clusters show as zero.
    if (run.type === 'normal' && host !== undefined && (await this.#isPreallocated(image))) {
      const fileMap = await this.#dataFileMap(image);
      if (host >= image.dataFile.size) flags |= STATUS_ZERO;
      else if (fileMap) {
        const piece = pieceAt(fileMap, host, image.dataFile.size);
        length = Math.min(length, piece.end - host);
        if (piece.kind === 'hole') flags |= STATUS_ZERO;
      }
    }

    if (flags & (STATUS_DATA | STATUS_ZERO)) flags |= STATUS_ALLOCATED;
    else if (!image.backing || offset >= image.backing.size) flags |= STATUS_ZERO;
    const file = host !== undefined ? image.dataFile.name : undefined;
    return { flags, length, map, file, compressed: run.type === 'compressed' };
  }

  /** A regular file: SEEK_DATA/SEEK_HOLE's answer (file-posix), holes read as zero. */
  async #rawStatus(raw: BlockDevice, offset: number, bytes: number): Promise<BlockStatus> {
    this.#fileMap ??= mapFileData(raw.name, raw.size);
    const fileMap = await this.#fileMap;
    let length = bytes;
    let flags = STATUS_OFFSET_VALID | STATUS_ALLOCATED;
    if (fileMap) {
      const piece = pieceAt(fileMap, offset, raw.size);
      length = Math.min(length, piece.end - offset);
      flags |= piece.kind === 'hole' ? STATUS_ZERO : STATUS_DATA;
    } else flags |= STATUS_DATA;
    return { flags, length, map: offset, file: raw.name, compressed: false };
  }

  async #runAt(image: Qcow2Image, offset: number): Promise<GuestMapping> {
    if (offset < this.#sliceStart || offset >= this.#sliceEnd) {
      const coverage = image.geometry.l2Coverage;
      this.#sliceStart = offset - (offset % coverage);
      this.#sliceEnd = Math.min(image.size, this.#sliceStart + coverage);
      this.#runs = [];
      await image.mapWithinL2(this.#sliceStart, this.#sliceEnd, this.#runs);
    }
    // Runs are sorted; binary search for the one holding `offset`.
    let low = 0;
    let high = this.#runs.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if ((this.#runs[middle] as GuestMapping).offset <= offset) low = middle;
      else high = middle - 1;
    }
    return this.#runs[low] as GuestMapping;
  }

  #isPreallocated(image: Qcow2Image): Promise<boolean> {
    this.#preallocated ??= detectMetadataPreallocation(image).catch(() => false);
    return this.#preallocated;
  }

  #dataFileMap(image: Qcow2Image): Promise<FileDataMap | undefined> {
    this.#fileMap ??= mapFileData(image.dataFile.name, image.dataFile.size);
    return this.#fileMap;
  }
}

/**
 * The piece of a file map holding `offset`: a data run, or the hole up to the
 * next one. Unwritten (fallocated) extents count as data, as QEMU's
 * SEEK_DATA-based probe sees them whenever their pages are cached; holes are
 * the only thing both agree read as zero.
 */
function pieceAt(map: FileDataMap, offset: number, size: number): { end: number; kind: string } {
  let low = 0;
  let high = map.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const run = map[middle] as FileDataMap[number];
    if (offset < run.offset) high = middle - 1;
    else if (offset >= run.end) low = middle + 1;
    else return { end: run.end, kind: run.kind };
  }
  const next = map[low];
  return { end: next ? next.offset : size, kind: 'hole' };
}

/**
 * QEMU's block status of a device and the backing chain below it
 * (bdrv_block_status_above with no base): the top device's answer, and where
 * it neither holds data nor reads as zero, the answer of the first device
 * down the chain that does, limited to the top's run. Raw files (top or
 * backing) answer as the file system's holes; qcow2 images as their L2 tables.
 */
export class ChainBlockStatus {
  readonly #layers: Layer[] = [];

  constructor(top: BlockDevice) {
    for (let device: BlockDevice | undefined = top; device; ) {
      const layer: Layer = new Layer(device);
      this.#layers.push(layer);
      device = layer.below;
    }
  }

  /**
   * The top device's own answer, without looking down the chain (QEMU's
   * bdrv_block_status): where a qcow2 top holds nothing the flags say neither
   * data nor zero, unless nothing below it can show through there.
   */
  topStatus(offset: number, bytes: number): Promise<BlockStatus> {
    return (this.#layers[0] as Layer).status(offset, bytes);
  }

  /**
   * QEMU's bdrv_block_status_above(top, NULL) exactly, as qemu-img compare
   * uses it: down the chain until a layer *allocates* the range (a qcow2
   * layer's "zero past the end of my backing file" does not stop the walk; a
   * backing file that ends before `offset` answers zero-and-allocated), and
   * STATUS_EOF when the answer reaches the end of the top device. The flags
   * are what `compare -s` compares, so every bit counts.
   */
  async statusAbove(offset: number, bytes: number): Promise<ChainStatus> {
    const top = this.#layers[0] as Layer;
    let depth = 0;
    let status: BlockStatus = await top.status(offset, bytes);
    while (!(status.flags & STATUS_ALLOCATED) && depth + 1 < this.#layers.length) {
      depth++;
      const layer = this.#layers[depth] as Layer;
      if (offset >= layer.device.size) {
        status = {
          flags: STATUS_ZERO | STATUS_ALLOCATED,
          length: status.length,
          map: 0,
          file: undefined,
          compressed: false,
        };
        break;
      }
      status = await layer.status(offset, status.length);
    }
    const eof = offset + status.length >= top.device.size ? STATUS_EOF : 0;
    return { ...status, flags: status.flags | eof, depth };
  }

  /** The status at `offset` for at most `bytes` bytes (which must lie inside the top device). */
  async status(offset: number, bytes: number): Promise<ChainStatus> {
    let depth = 0;
    for (;;) {
      const status = await (this.#layers[depth] as Layer).status(offset, bytes);
      bytes = status.length;
      if (status.flags & (STATUS_DATA | STATUS_ZERO) || depth + 1 >= this.#layers.length) {
        return { ...status, depth };
      }
      depth++;
    }
  }
}
