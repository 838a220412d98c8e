import { type BlockDevice, ProgressTracker, throwIfAborted } from '@x/blockio';
import type { Qcow2Writer } from '../write/writer.js';
import { type ConvertChunk, SECTOR } from './convert-chunks.js';
import {
  BUFFER_SECTORS,
  type CopySettings,
  type CopyTotals,
  readSectors,
  sourceChunks,
} from './copy-settings.js';
import { allocatedSectorsMin, zeroSectors } from './sparse-runs.js';

/** qemu-img's default -S: zero runs of at least 4 KiB inside data are not written. */
const MIN_SPARSE_SECTORS = 8;
/**
 * qemu-img's s.alignment: max(pow2floor(min sparse), the target's request
 * alignment in sectors) — 8 sectors for a qcow2 file.
 */
const WRITE_ALIGNMENT_SECTORS = 8;

interface PendingChunk {
  chunk: ConvertChunk;
  data: Promise<Buffer> | undefined;
}

/**
 * convert without -c: reads the data chunks (a few ahead) and writes each in
 * order as qemu-img's convert_co_write() does, one write request per run of
 * sectors that is not a long enough stretch of zeros.
 */
export async function copySparse(
  source: BlockDevice,
  writer: Qcow2Writer,
  settings: CopySettings,
): Promise<CopyTotals> {
  const bufferSectors = Math.max(BUFFER_SECTORS, settings.clusterSize / SECTOR);
  const chunks = sourceChunks(source, settings, { bufferSectors, compressed: false });
  const progress = new ProgressTracker(
    'convert',
    settings.totalSectors * SECTOR,
    settings.onProgress,
  );
  // One buffer per chunk in flight; a buffer returns to the pool once written.
  const pool: Buffer[] = [];
  const zeroFlags = new Uint8Array(bufferSectors);
  const read = async (chunk: ConvertChunk): Promise<Buffer> => {
    const whole = pool.pop() ?? Buffer.allocUnsafe(bufferSectors * SECTOR);
    const buffer = whole.subarray(0, chunk.sectors * SECTOR);
    await readSectors(source, chunk.sector, buffer);
    return buffer;
  };
  const queue: PendingChunk[] = [];
  let exhausted = false;
  const totals: CopyTotals = { bytesRead: 0, bytesWritten: 0 };
  // A new image reads as zeros, unless it has a backing file (qemu-img's has_zero_init).
  const writeZeroes = settings.targetBackingSectors !== undefined;
  const fill = async () => {
    while (!exhausted && queue.length < settings.readAhead) {
      const next = await chunks.next();
      if (next.done) {
        exhausted = true;
        break;
      }
      const chunk = next.value;
      const data = chunk.status === 'data' ? read(chunk) : undefined;
      // Rejections are awaited in order below; do not report them as unhandled meanwhile.
      data?.catch(() => {});
      queue.push({ chunk, data });
    }
  };
  try {
    for (;;) {
      throwIfAborted(settings.signal, writer.file.name);
      await fill();
      const pending = queue.shift();
      if (!pending) break;
      const { chunk } = pending;
      if (pending.data) {
        const data = await pending.data;
        totals.bytesRead += data.byteLength;
        const zero = zeroSectors(data, chunk.sectors, zeroFlags);
        totals.bytesWritten += await writeRuns(writer, chunk, data, zero, writeZeroes);
        pool.push(Buffer.from(data.buffer, data.byteOffset, bufferSectors * SECTOR));
      } else if (chunk.status === 'zero' && writeZeroes) {
        await zeroSectorsOf(writer, chunk.sector, chunk.sectors);
      }
      progress.advance(chunk.sectors * SECTOR);
    }
  } finally {
    await Promise.allSettled(queue.map((pending) => pending.data));
  }
  progress.finish();
  return totals;
}

/**
 * convert_co_write() without -c: the data runs, each its own write request;
 * the zero runs between them are written as zeros when `writeZeroes` (a target
 * with a backing file), else skipped.
 */
async function writeRuns(
  writer: Qcow2Writer,
  chunk: ConvertChunk,
  data: Buffer,
  zero: Uint8Array,
  writeZeroes: boolean,
): Promise<number> {
  let written = 0;
  for (let first = 0; first < chunk.sectors; ) {
    const run = allocatedSectorsMin(
      zero,
      first,
      chunk.sectors - first,
      MIN_SPARSE_SECTORS,
      chunk.sector + first,
      WRITE_ALIGNMENT_SECTORS,
    );
    if (run.allocated) {
      const bytes = data.subarray(first * SECTOR, (first + run.sectors) * SECTOR);
      await writer.write((chunk.sector + first) * SECTOR, bytes);
      written += bytes.byteLength;
    } else if (writeZeroes) {
      await zeroSectorsOf(writer, chunk.sector + first, run.sectors);
    }
    first += run.sectors;
  }
  return written;
}

/** qemu-img's blk_co_pwrite_zeroes(…, BDRV_REQ_MAY_UNMAP) on the target. */
export function zeroSectorsOf(writer: Qcow2Writer, sector: number, sectors: number): Promise<void> {
  return writer.writeZeroes(sector * SECTOR, sectors * SECTOR, { unmap: true });
}
