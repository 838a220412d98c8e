import {
  type BlockDevice,
  type ByteRange,
  clampRange,
  type FileDataMap,
  type LongRunningOptions,
  mapFileData,
  ProgressTracker,
  throwIfAborted,
} from '@x/blockio';
import { RawBackingFile } from '../backing/raw-backing-file.js';
import { Qcow2Image } from '../image/qcow2-image.js';
import type { GuestMapping } from '../read/guest-mapping.js';
import { detectMetadataPreallocation } from './metadata-preallocation.js';

/** One merged run, with qemu-img map --output=json's keys and meanings. */
export interface MapEntry {
  start: number;
  length: number;
  /** 0 = this image, 1.. = that many levels down the backing chain. */
  depth: number;
  /** Allocated somewhere (data, or zero flag) rather than falling off the chain. */
  present: boolean;
  /** Reads as zeros. */
  zero: boolean;
  /** Holds data (false for zeros and unallocated runs). */
  data: boolean;
  /** Host offset in `filename` (absent for compressed data and plain zero/unallocated runs). */
  offset?: number;
  /** The file holding the bytes at `offset`: the qcow2 file, its data file or a raw backing file. */
  filename?: string;
  /** Stored compressed (qemu-img 7.2 has no such key; newer versions call it the same). */
  compressed: boolean;
}

const DATA = 1;
const ZERO = 2;
const OFFSET_VALID = 4;
const ALLOCATED = 8;

interface Status {
  flags: number;
  length: number;
  map: number;
  file: string | undefined;
  compressed: boolean;
}

/** Per-layer state: the last L2 slice's runs and the lazily learnt file facts. */
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

  async status(offset: number, bytes: number): Promise<Status> {
    const length = Math.min(bytes, this.device.size - offset);
    const device = this.device;
    if (device instanceof Qcow2Image) return this.#qcow2Status(device, offset, length);
    if (device instanceof RawBackingFile) return this.#rawStatus(device, offset, length);
    return { flags: DATA | ALLOCATED, length, map: 0, file: undefined, compressed: false };
  }

  async #qcow2Status(image: Qcow2Image, offset: number, bytes: number): Promise<Status> {
    const run = await this.#runAt(image, offset);
    let length = Math.min(bytes, run.offset + run.length - offset);
    let flags = 0;
    let map = 0;
    const host = run.hostOffset === undefined ? undefined : run.hostOffset + (offset - run.offset);
    if (host !== undefined) {
      flags |= OFFSET_VALID;
      map = host;
    }
    if (run.type === 'zero-plain' || run.type === 'zero-alloc') flags |= ZERO;
    else if (run.type === 'normal' || run.type === 'compressed') flags |= DATA;

    // QEMU asks the file system about data clusters of metadata-preallocated
    // images only (BDRV_BLOCK_RECURSE), so unwritten clusters show as zero.
    if (run.type === 'normal' && host !== undefined && (await this.#isPreallocated(image))) {
      const fileMap = await this.#dataFileMap(image);
      if (host >= image.dataFile.size) flags |= ZERO;
      else if (fileMap) {
        const piece = pieceAt(fileMap, host, image.dataFile.size);
        length = Math.min(length, piece.end - host);
        if (piece.kind === 'hole') flags |= ZERO;
      }
    }

    if (flags & (DATA | ZERO)) flags |= ALLOCATED;
    else if (!image.backing || offset >= image.backing.size) flags |= ZERO;
    const file = host !== undefined ? image.dataFile.name : undefined;
    return { flags, length, map, file, compressed: run.type === 'compressed' };
  }

  async #rawStatus(raw: RawBackingFile, offset: number, bytes: number): Promise<Status> {
    this.#fileMap ??= mapFileData(raw.name, raw.size);
    const fileMap = await this.#fileMap;
    let length = bytes;
    let flags = OFFSET_VALID | ALLOCATED;
    if (fileMap) {
      const piece = pieceAt(fileMap, offset, raw.size);
      length = Math.min(length, piece.end - offset);
      flags |= piece.kind === 'hole' ? ZERO : DATA;
    } else flags |= DATA;
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
 * The image's map as qemu-img map --output=json computes it (QEMU's
 * bdrv_block_status walked down the backing chain): merged runs with depth,
 * present, zero, data, host offset and the file holding them.
 */
export async function* mapEntries(
  image: Qcow2Image,
  range?: ByteRange,
  options: LongRunningOptions = {},
): AsyncIterable<MapEntry> {
  const { offset: start, length: total } = clampRange(image, range);
  const layers: Layer[] = [];
  for (let device: BlockDevice | undefined = image; device; ) {
    const layer: Layer = new Layer(device);
    layers.push(layer);
    device = layer.below;
  }
  const progress = new ProgressTracker('map', total, options.onProgress);
  const end = start + total;
  let pending: MapEntry | undefined;
  let position = start;
  while (position < end) {
    throwIfAborted(options.signal, image.name);
    let bytes = end - position;
    let depth = 0;
    let status: Status;
    for (;;) {
      status = await (layers[depth] as Layer).status(position, bytes);
      bytes = status.length;
      if (status.flags & (DATA | ZERO) || depth + 1 >= layers.length) break;
      depth++;
    }
    const entry: MapEntry = {
      start: position,
      length: bytes,
      depth,
      present: (status.flags & ALLOCATED) !== 0,
      zero: (status.flags & ZERO) !== 0,
      data: (status.flags & DATA) !== 0,
      compressed: status.compressed,
    };
    if (status.flags & OFFSET_VALID) {
      entry.offset = status.map;
      if (status.file !== undefined) entry.filename = status.file;
    }
    if (pending && mergeable(pending, entry)) pending.length += entry.length;
    else {
      if (pending) yield pending;
      pending = entry;
    }
    position += bytes;
    progress.advance(bytes);
  }
  if (pending) yield pending;
  progress.finish();
}

/** qemu-img's entry_mergeable, plus the compressed flag. */
function mergeable(current: MapEntry, next: MapEntry): boolean {
  if (
    current.zero !== next.zero ||
    current.data !== next.data ||
    current.depth !== next.depth ||
    current.present !== next.present ||
    current.compressed !== next.compressed ||
    current.filename !== next.filename ||
    (current.offset === undefined) !== (next.offset === undefined)
  ) {
    return false;
  }
  return current.offset === undefined || current.offset + current.length === next.offset;
}

/** All map entries as an array. */
export async function mapImage(
  image: Qcow2Image,
  options: LongRunningOptions & { range?: ByteRange } = {},
): Promise<MapEntry[]> {
  const entries: MapEntry[] = [];
  for await (const entry of mapEntries(image, options.range, options)) entries.push(entry);
  return entries;
}
