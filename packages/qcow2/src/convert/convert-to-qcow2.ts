import { stat } from 'node:fs/promises';
import {
  type BlockDevice,
  BlockIoError,
  createOutputFile,
  isAllZero,
  isPowerOfTwo,
  type LongRunningOptions,
  ProgressTracker,
  throwIfAborted,
} from '@x/blockio';
import { createQcow2In } from '../create/create-qcow2.js';
import { Qcow2Error } from '../errors.js';
import { MAX_CLUSTER_BITS, MIN_CLUSTER_BITS } from '../format/constants.js';
import { Qcow2Image } from '../image/qcow2-image.js';
import { ChainBlockStatus } from '../map/block-status.js';
import { Qcow2Writer } from '../write/writer.js';
import { type ConvertChunk, convertChunks, SECTOR } from './convert-chunks.js';
import { checkInputUnchanged, type OpenInputOptions, openInput } from './open-input.js';
import { allocatedSectorsMin } from './sparse-runs.js';

export interface ConvertToQcow2Options extends OpenInputOptions, LongRunningOptions {
  /** Cluster size of the new image: a power of two from 512 B to 2 MiB. Default 64 KiB. */
  clusterSize?: number | undefined;
  /** Store clusters deflate-compressed (qemu-img convert -c). Default false. */
  compress?: boolean | undefined;
  /** Replace an existing output file. Default false. */
  overwrite?: boolean | undefined;
  /** fsync the output before moving it into place (default true). */
  sync?: boolean | undefined;
  /** Source chunks read ahead of the one being written. Default 4. */
  readAhead?: number | undefined;
}

export interface ConvertToQcow2Result {
  inputFormat: 'qcow2' | 'raw';
  /** Virtual size of the new image (the source's, rounded up to 512). */
  virtualSize: number;
  /** Guest bytes handed to the qcow2 writer. */
  bytesWritten: number;
  /** Guest bytes read from the source. */
  bytesRead: number;
  /** Size of the new qcow2 file. */
  fileSize: number;
}

/** qemu-img's default -S: zero runs of at least 4 KiB inside data are not written. */
const MIN_SPARSE_SECTORS = 8;
/**
 * qemu-img's s.alignment: max(pow2floor(min sparse), the target's request
 * alignment in sectors) — 8 sectors for a qcow2 file.
 */
const WRITE_ALIGNMENT_SECTORS = 8;
/** qemu-img's IO_BUF_SIZE (2 MiB), the most one data chunk holds. */
const BUFFER_SECTORS = 4096;

/**
 * `qemu-img convert -O qcow2 [-c] [-o cluster_size=N]`: copies every guest
 * byte of `input` (qcow2 of any kind, one of its snapshots, or raw) into a new
 * compact qcow2 image whose bytes are those qemu-img 7.2 writes.
 *
 * The image is created as `qemu-img create` would, with the source's size;
 * then the source is cut into the chunks qemu-img cuts it into (see
 * convertChunks), runs that read as zero are skipped (the new image reads as
 * zeros), and data chunks are written in order — without -c as runs split at
 * all-zero stretches of 4 KiB and more, with -c one compressed cluster at a
 * time, skipping all-zero clusters. Reads run ahead of the writes; the writes
 * themselves go one at a time, in guest order, as qemu-img issues them, so
 * every allocation lands where qemu-img's does.
 *
 * The output appears under its name only when complete (`.partial` +
 * rename); on error or abort nothing is left behind.
 */
export async function convertToQcow2(
  input: string,
  output: string,
  options: ConvertToQcow2Options = {},
): Promise<ConvertToQcow2Result> {
  const clusterSize = options.clusterSize ?? 65536;
  if (
    !isPowerOfTwo(clusterSize) ||
    clusterSize < 2 ** MIN_CLUSTER_BITS ||
    clusterSize > 2 ** MAX_CLUSTER_BITS
  ) {
    throw new BlockIoError(
      'INVALID_ARGUMENT',
      `cluster size ${clusterSize} is not a power of two from 512 B to 2 MiB`,
      { path: output, structure: 'convert options' },
    );
  }
  throwIfAborted(options.signal, input);
  const { device: source, format } = await openInput(input, options);
  try {
    const totalSectors = Math.ceil(source.size / SECTOR);
    const virtualSize = totalSectors * SECTOR;
    const target = await createOutputFile(output, {
      overwrite: options.overwrite ?? false,
      sync: options.sync ?? true,
    });
    try {
      const image = await createQcow2In(target, { size: virtualSize, clusterSize });
      let copied: { bytesRead: number; bytesWritten: number };
      try {
        const writer = image.writePath;
        if (!(writer instanceof Qcow2Writer)) {
          throw new Qcow2Error('UNSUPPORTED', 'the new image has no qcow2 writer', {
            path: output,
          });
        }
        copied = await copyChunks(source, writer, {
          totalSectors,
          clusterSize,
          compress: options.compress ?? false,
          sourceAlignment: source instanceof Qcow2Image ? source.geometry.clusterSize / SECTOR : 1,
          readAhead: options.readAhead ?? 4,
          signal: options.signal,
          onProgress: options.onProgress,
        });
        if (options.compress) await writer.finishCompressedWrites();
      } finally {
        await image.close();
      }
      await checkInputUnchanged(source);
      // The image wrote through its own handle; ask the file system.
      const fileSize = (await stat(target.partialPath)).size;
      await target.commit();
      return { inputFormat: format, virtualSize, fileSize, ...copied };
    } catch (error) {
      await target.abort();
      throw error;
    }
  } finally {
    await source.close();
  }
}

interface CopySettings extends LongRunningOptions {
  totalSectors: number;
  clusterSize: number;
  compress: boolean;
  sourceAlignment: number;
  readAhead: number;
}

interface PendingChunk {
  chunk: ConvertChunk;
  data: Promise<Buffer> | undefined;
}

/** Reads the data chunks (a few ahead) and writes them in order. */
async function copyChunks(
  source: BlockDevice,
  writer: Qcow2Writer,
  settings: CopySettings,
): Promise<{ bytesRead: number; bytesWritten: number }> {
  const clusterSectors = settings.clusterSize / SECTOR;
  const chunks = convertChunks(new ChainBlockStatus(source), {
    totalSectors: settings.totalSectors,
    sourceAlignment: settings.sourceAlignment,
    // With -c qemu-img copies one cluster at a time.
    bufferSectors: settings.compress ? clusterSectors : Math.max(BUFFER_SECTORS, clusterSectors),
    compressedClusterSectors: settings.compress ? clusterSectors : undefined,
  })[Symbol.asyncIterator]();
  const progress = new ProgressTracker(
    'convert',
    settings.totalSectors * SECTOR,
    settings.onProgress,
  );
  const read = (chunk: ConvertChunk): Promise<Buffer> => {
    const buffer = Buffer.alloc(chunk.sectors * SECTOR);
    const offset = chunk.sector * SECTOR;
    // The last sector of a raw source may be partial: the rest reads as zeros.
    const inside = Math.min(buffer.byteLength, source.size - offset);
    return source.read(offset, buffer.subarray(0, inside)).then(() => buffer);
  };
  const queue: PendingChunk[] = [];
  let exhausted = false;
  let bytesRead = 0;
  let bytesWritten = 0;
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
        bytesRead += data.byteLength;
        bytesWritten += settings.compress
          ? await writeCompressedChunk(writer, chunk, data)
          : await writeSparseChunk(writer, chunk, data);
      }
      progress.advance(chunk.sectors * SECTOR);
    }
  } finally {
    await Promise.allSettled(queue.map((pending) => pending.data));
  }
  progress.finish();
  return { bytesRead, bytesWritten };
}

/** convert_co_write() without -c: the data runs, each its own write request. */
async function writeSparseChunk(
  writer: Qcow2Writer,
  chunk: ConvertChunk,
  data: Buffer,
): Promise<number> {
  let written = 0;
  for (let first = 0; first < chunk.sectors; ) {
    const run = allocatedSectorsMin(
      data,
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
    }
    first += run.sectors;
  }
  return written;
}

/** convert_co_write() with -c: one cluster, compressed unless it is all zeros. */
async function writeCompressedChunk(
  writer: Qcow2Writer,
  chunk: ConvertChunk,
  data: Buffer,
): Promise<number> {
  if (isAllZero(data)) return 0;
  await writer.writeCompressed(chunk.sector * SECTOR, data);
  return data.byteLength;
}
