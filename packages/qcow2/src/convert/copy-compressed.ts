import { type BlockDevice, isAllZero, ProgressTracker, throwIfAborted } from '@x/blockio';
import type { PrecompressedCluster } from '../image/write-path.js';
import { DeflatePool } from '../write/deflate-pool.js';
import type { Qcow2Writer } from '../write/writer.js';
import { type ConvertChunk, SECTOR } from './convert-chunks.js';
import { type CopySettings, type CopyTotals, readSectors, sourceChunks } from './copy-settings.js';
import { zeroSectorsOf } from './copy-sparse.js';

/** Guest bytes gathered and read together. */
const WINDOW_BYTES = 8 << 20;
/** Bytes of clusters per message to a deflate worker: small enough to share work out evenly. */
const BATCH_BYTES = 1 << 20;
/** Windows prepared ahead of the one being written. */
const WINDOWS_AHEAD = 3;

/** A run of chunks (one cluster each), read and with its clusters deflated. */
interface Window {
  chunks: ConvertChunk[];
  /** Chunk i's bytes at i * cluster size (data chunks only). */
  buffer: Buffer;
  /** Per chunk: no data to write (zero or backing status, or all-zero data). */
  skip: boolean[];
  /** Per chunk: the deflated cluster, when it was done ahead. */
  deflated: Array<PrecompressedCluster | undefined>;
}

/**
 * convert -c: every chunk is one target cluster, written compressed unless
 * it is all zeros, one at a time in guest order (qemu-img's convert_co_write
 * with BDRV_REQ_WRITE_COMPRESSED); zeros are skipped, or over a target
 * backing file written as zeros. Deflating is most of the work, so windows
 * of clusters are read and deflated on worker threads ahead of the writes;
 * the bytes are the same as deflating each cluster when it is written.
 */
export async function copyCompressed(
  source: BlockDevice,
  writer: Qcow2Writer,
  settings: CopySettings,
  deflateWorkers?: number,
): Promise<CopyTotals> {
  const clusterSize = settings.clusterSize;
  const clusterSectors = clusterSize / SECTOR;
  const chunks = sourceChunks(source, settings, {
    bufferSectors: clusterSectors,
    compressed: true,
  });
  const perWindow = Math.max(1, Math.floor(WINDOW_BYTES / clusterSize));
  const pool = new DeflatePool(deflateWorkers, writer.image.compressionType);
  const progress = new ProgressTracker(
    'convert',
    settings.totalSectors * SECTOR,
    settings.onProgress,
  );
  const totals: CopyTotals = { bytesRead: 0, bytesWritten: 0 };
  // A new image reads as zeros, unless it has a backing file (qemu-img's has_zero_init).
  const writeZeroes = settings.targetBackingSectors !== undefined;
  let exhausted = false;

  const collect = async (): Promise<ConvertChunk[]> => {
    const collected: ConvertChunk[] = [];
    while (!exhausted && collected.length < perWindow) {
      const next = await chunks.next();
      if (next.done) exhausted = true;
      else collected.push(next.value);
    }
    return collected;
  };

  const prepare = async (windowChunks: ConvertChunk[]): Promise<Window> => {
    const buffer = Buffer.allocUnsafe(windowChunks.length * clusterSize);
    const skip = windowChunks.map((chunk) => chunk.status !== 'data');
    const deflated: Array<PrecompressedCluster | undefined> = windowChunks.map(() => undefined);
    // Consecutive data chunks are one contiguous guest range: one read each.
    for (let first = 0; first < windowChunks.length; ) {
      if (skip[first]) {
        first++;
        continue;
      }
      let end = first + 1;
      while (end < windowChunks.length && !skip[end]) end++;
      const start = windowChunks[first] as ConvertChunk;
      const last = windowChunks[end - 1] as ConvertChunk;
      const sectors = last.sector + last.sectors - start.sector;
      await readSectors(
        source,
        start.sector,
        buffer.subarray(first * clusterSize, first * clusterSize + sectors * SECTOR),
      );
      first = end;
    }
    const whole: number[] = [];
    windowChunks.forEach((chunk, index) => {
      if (skip[index]) return;
      if (isAllZero(chunkBytes(buffer, clusterSize, index, chunk))) skip[index] = true;
      // A short last cluster is padded and deflated by the writer itself.
      else if (chunk.sectors === clusterSectors) whole.push(index);
    });
    const batchSize = Math.max(1, Math.floor(BATCH_BYTES / clusterSize));
    const work: Promise<void>[] = [];
    for (let at = 0; at < whole.length; at += batchSize) {
      const indices = whole.slice(at, at + batchSize);
      const clusters = indices.map((index) =>
        chunkBytes(buffer, clusterSize, index, windowChunks[index] as ConvertChunk),
      );
      work.push(
        pool.deflate(clusters).then((results) => {
          indices.forEach((index, i) => {
            deflated[index] = { compressed: results[i] };
          });
        }),
      );
    }
    await Promise.all(work);
    return { chunks: windowChunks, buffer, skip, deflated };
  };

  // Windows prepared ahead of the one being written, so the workers stay busy.
  const ahead: Promise<Window>[] = [];
  const fill = async () => {
    while (!exhausted && ahead.length < WINDOWS_AHEAD) {
      const collected = await collect();
      if (collected.length === 0) break;
      const prepared = prepare(collected);
      prepared.catch(() => {});
      ahead.push(prepared);
    }
  };
  try {
    for (;;) {
      throwIfAborted(settings.signal, writer.file.name);
      await fill();
      const next = ahead.shift();
      if (!next) break;
      const window = await next;
      for (const [index, chunk] of window.chunks.entries()) {
        throwIfAborted(settings.signal, writer.file.name);
        if (chunk.status === 'data') totals.bytesRead += chunk.sectors * SECTOR;
        if (window.skip[index]) {
          // Zeros (all-zero data too) over a backing file must be written as zeros.
          if (writeZeroes && chunk.status !== 'backing') {
            await zeroSectorsOf(writer, chunk.sector, chunk.sectors);
          }
        } else {
          const data = chunkBytes(window.buffer, clusterSize, index, chunk);
          await writer.writeCompressed(chunk.sector * SECTOR, data, window.deflated[index]);
          totals.bytesWritten += data.byteLength;
        }
        progress.advance(chunk.sectors * SECTOR);
      }
    }
  } finally {
    await Promise.allSettled(ahead);
    await pool.close();
  }
  progress.finish();
  return totals;
}

/** Chunk `index`'s bytes in a window buffer. */
function chunkBytes(buffer: Buffer, clusterSize: number, index: number, chunk: ConvertChunk) {
  return buffer.subarray(index * clusterSize, index * clusterSize + chunk.sectors * SECTOR);
}
