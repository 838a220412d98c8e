import {
  type ByteRange,
  clampRange,
  type LongRunningOptions,
  ProgressTracker,
  throwIfAborted,
} from '@x/blockio';
import type { Qcow2Image } from '../image/qcow2-image.js';
import {
  ChainBlockStatus,
  STATUS_ALLOCATED,
  STATUS_DATA,
  STATUS_OFFSET_VALID,
  STATUS_ZERO,
} from './block-status.js';

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

export interface MapOptions extends LongRunningOptions {
  /** The guest range to map (clamped to the disk). Default: the whole disk. */
  range?: ByteRange | undefined;
}

/**
 * The image's map as qemu-img map --output=json computes it (QEMU's
 * bdrv_block_status walked down the backing chain): merged runs with depth,
 * present, zero, data, host offset and the file holding them.
 */
export async function* mapEntries(
  image: Qcow2Image,
  options: MapOptions = {},
): AsyncIterable<MapEntry> {
  const { offset: start, length: total } = clampRange(image, options.range);
  const chain = new ChainBlockStatus(image);
  const progress = new ProgressTracker('map', total, options.onProgress);
  const end = start + total;
  let pending: MapEntry | undefined;
  let position = start;
  while (position < end) {
    throwIfAborted(options.signal, image.name);
    const status = await chain.status(position, end - position);
    const bytes = status.length;
    const entry: MapEntry = {
      start: position,
      length: bytes,
      depth: status.depth,
      present: (status.flags & STATUS_ALLOCATED) !== 0,
      zero: (status.flags & STATUS_ZERO) !== 0,
      data: (status.flags & STATUS_DATA) !== 0,
      compressed: status.compressed,
    };
    if (status.flags & STATUS_OFFSET_VALID) {
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
export async function mapImage(image: Qcow2Image, options: MapOptions = {}): Promise<MapEntry[]> {
  const entries: MapEntry[] = [];
  for await (const entry of mapEntries(image, options)) entries.push(entry);
  return entries;
}
