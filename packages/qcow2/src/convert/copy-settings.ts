import type { BlockDevice, LongRunningOptions } from '@x/blockio';
import { ChainBlockStatus } from '../map/block-status.js';
import { type ConvertChunk, convertChunks, SECTOR } from './convert-chunks.js';

/** What the copy loops of convertToQcow2 need to know. */
export interface CopySettings extends LongRunningOptions {
  /** Sectors of the source (its size rounded up to 512). */
  totalSectors: number;
  /** Cluster size of the new image. */
  clusterSize: number;
  /** Block-status alignment of the source, in sectors (see ChunkPlanOptions). */
  sourceAlignment: number;
  /** Chunks read ahead of the one being written. */
  readAhead: number;
  /**
   * Sectors of the target's backing file, when it has one (qemu-img convert
   * -B): zeros are then written as zeros, and what the source's top layer
   * leaves unallocated is left to the backing file (see convertChunks).
   */
  targetBackingSectors?: number | undefined;
}

export interface CopyTotals {
  /** Guest bytes read from the source. */
  bytesRead: number;
  /** Guest bytes handed to the qcow2 writer. */
  bytesWritten: number;
}

/** qemu-img's IO_BUF_SIZE (2 MiB), the most one data chunk holds without -c. */
export const BUFFER_SECTORS = 4096;

/** The chunks qemu-img cuts `source` into (see convertChunks). */
export function sourceChunks(
  source: BlockDevice,
  settings: CopySettings,
  options: { bufferSectors: number; compressed: boolean },
): AsyncIterator<ConvertChunk> {
  return convertChunks(new ChainBlockStatus(source), {
    totalSectors: settings.totalSectors,
    sourceAlignment: settings.sourceAlignment,
    bufferSectors: options.bufferSectors,
    compressedClusterSectors: options.compressed ? settings.clusterSize / SECTOR : undefined,
    targetBackingSectors: settings.targetBackingSectors,
  })[Symbol.asyncIterator]();
}

/**
 * Reads guest sectors [sector, sector + buffer.byteLength / 512) of `source`
 * into `buffer`. The last sector of a raw source may be partial: the rest
 * reads as zeros.
 */
export async function readSectors(
  source: BlockDevice,
  sector: number,
  buffer: Buffer,
): Promise<void> {
  const offset = sector * SECTOR;
  const inside = Math.max(0, Math.min(buffer.byteLength, source.size - offset));
  buffer.fill(0, inside);
  if (inside > 0) await source.read(offset, buffer.subarray(0, inside));
}
