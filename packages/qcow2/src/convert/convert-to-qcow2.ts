import { stat } from 'node:fs/promises';
import {
  type BlockDevice,
  BlockIoError,
  createOutputFile,
  isPowerOfTwo,
  type LongRunningOptions,
  refuseSameFile,
  throwIfAborted,
} from '@x/blockio';
import { resolveNamedFile } from '../backing/policy.js';
import { type CreateQcow2Options, createQcow2In } from '../create/create-qcow2.js';
import { Qcow2Error, type Qcow2ErrorCode } from '../errors.js';
import { MAX_CLUSTER_BITS, MIN_CLUSTER_BITS } from '../format/constants.js';
import { openQcow2 } from '../image/open.js';
import { Qcow2Image } from '../image/qcow2-image.js';
import { Qcow2Writer } from '../write/writer.js';
import { SECTOR } from './convert-chunks.js';
import { type ConvertToQcow2Result, salvageReport } from './convert-result.js';
import { copyCompressed } from './copy-compressed.js';
import type { CopySettings } from './copy-settings.js';
import { copySparse } from './copy-sparse.js';
import { isBlockDevicePath } from './copy-to-device.js';
import {
  checkInputUnchanged,
  deviceInput,
  type OpenInputOptions,
  openInput,
} from './open-input.js';

/**
 * What `qemu-img convert -O qcow2 -o …` may set of the new image (see
 * CreateQcow2Options). With `backingFile` (qemu-img convert -B), the new
 * image gets that backing file, stored as given (a relative name is relative
 * to the new image's directory), and it must open (in `backingFormat`, or
 * probed when that is not given): the source's top layer is copied — what it
 * leaves unallocated stays unallocated so the backing file shows through, and
 * its zeros are written as zero clusters — exactly as qemu-img does. Like
 * qemu-img, the backing file's content is not compared with the source's.
 */
export type ConvertImageOptions = Pick<
  CreateQcow2Options,
  | 'version'
  | 'refcountBits'
  | 'compressionType'
  | 'extendedL2'
  | 'preallocation'
  | 'lazyRefcounts'
  | 'backingFile'
  | 'backingFormat'
>;

export interface ConvertToQcow2Options
  extends OpenInputOptions,
    LongRunningOptions,
    ConvertImageOptions {
  /** Cluster size of the new image: a power of two from 512 B to 2 MiB. Default 64 KiB. */
  clusterSize?: number | undefined;
  /** Store clusters compressed (qemu-img convert -c), with `compressionType` (default zlib). Default false. */
  compress?: boolean | undefined;
  /** Replace an existing output file. Default false. */
  overwrite?: boolean | undefined;
  /** fsync the output before moving it into place (default true). */
  sync?: boolean | undefined;
  /** Source chunks read ahead of the one being written. Default 4. */
  readAhead?: number | undefined;
  /** Worker threads compressing clusters with `compress`. Default: one per CPU (0: none). */
  deflateWorkers?: number | undefined;
}

/**
 * `qemu-img convert -O qcow2 [-c] [-o cluster_size=N,compat=…,…]`: copies every guest
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
 * `input` is a path, or any BlockDevice the caller opened (an assembled
 * image, a Qcow2Image view, a slice): its guest bytes are copied the same
 * way, holes found through its `extents()`, and it is left open. The
 * result's `inputFormat` is then `qcow2` for a Qcow2Image, `raw` otherwise.
 *
 * The output appears under its name only when complete (`.partial` +
 * rename); on error or abort nothing is left behind.
 */
export async function convertToQcow2(
  input: string | BlockDevice,
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
  const ownsSource = typeof input === 'string';
  const backingPath =
    options.backingFile === undefined
      ? undefined
      : resolveNamedFile(output, options.backingFile, 'backing file');
  // Replacing the input (or the new image's backing file) with the conversion would destroy it.
  await refuseSameFile(output, [
    ...(ownsSource ? [input] : []),
    ...(backingPath === undefined ? [] : [backingPath]),
  ]);
  if (await isBlockDevicePath(output)) {
    throw new Qcow2Error(
      'UNSUPPORTED',
      'is a block device: qcow2 output is written as a file (it grows as clusters are added); convert to raw (-O raw) onto a device, or to a qcow2 file',
      { path: output },
    );
  }
  throwIfAborted(options.signal, ownsSource ? input : input.name);
  const {
    device: source,
    format,
    salvage,
  } = ownsSource ? await openInput(input, options) : deviceInput(input, options);
  try {
    const totalSectors = Math.ceil(source.size / SECTOR);
    const virtualSize = totalSectors * SECTOR;
    const target = await createOutputFile(output, {
      overwrite: options.overwrite ?? false,
      sync: options.sync ?? true,
    });
    try {
      let image = await createQcow2In(target, {
        size: virtualSize,
        clusterSize,
        version: options.version,
        refcountBits: options.refcountBits,
        compressionType: options.compressionType,
        extendedL2: options.extendedL2,
        preallocation: options.preallocation,
        lazyRefcounts: options.lazyRefcounts,
        backingFile: options.backingFile,
        backingFormat: options.backingFormat,
      });
      if (options.backingFile !== undefined) {
        // As qemu-img, open the new image again, now with its backing file: writes
        // copy-on-write from it, and a backing file that does not open fails here.
        await image.close();
        image = await openQcow2(target.partialPath, {
          writable: true,
          backingPolicy: 'allow',
        }).catch((error: unknown) => {
          throw unusableBacking(error, output, options.backingFile as string, backingPath);
        });
      }
      let copied: { bytesRead: number; bytesWritten: number };
      try {
        const writer = image.writePath;
        if (!(writer instanceof Qcow2Writer)) {
          throw new Qcow2Error('UNSUPPORTED', 'the new image has no qcow2 writer', {
            path: output,
          });
        }
        // The output's commit syncs the file (unless told not to); no second fsync on close.
        writer.syncOnClose = false;
        const settings: CopySettings = {
          totalSectors,
          clusterSize,
          sourceAlignment: source instanceof Qcow2Image ? source.geometry.clusterSize / SECTOR : 1,
          readAhead: options.readAhead ?? 4,
          targetBackingSectors: image.backing ? Math.ceil(image.backing.size / SECTOR) : undefined,
          signal: options.signal,
          onProgress: options.onProgress,
        };
        copied = options.compress
          ? await copyCompressed(source, writer, settings, options.deflateWorkers)
          : await copySparse(source, writer, settings);
        if (options.compress) await writer.finishCompressedWrites();
      } finally {
        await image.close();
      }
      await checkInputUnchanged(source);
      // The image wrote through its own handle; ask the file system.
      const fileSize = (await stat(target.partialPath)).size;
      await target.commit();
      const salvaged = salvageReport(salvage);
      return {
        inputFormat: format,
        virtualSize,
        fileSize,
        ...copied,
        ...(salvaged ? { salvaged } : {}),
      };
    } catch (error) {
      await target.abort();
      throw error;
    }
  } finally {
    if (ownsSource) await source.close();
  }
}

/**
 * The new image's backing file does not open (missing, not in the format
 * given, damaged): say so about the output being made, not about its
 * temporary name, keeping the code and the file that failed.
 */
function unusableBacking(
  error: unknown,
  output: string,
  backingFile: string,
  backingPath: string | undefined,
): unknown {
  if (!(error instanceof BlockIoError) || error.path !== backingPath) return error;
  const reason = error.message.replace(/^cannot open the backing file of .*?: /, '');
  const message = `the backing file "${backingFile}" of ${output} cannot be used: ${reason}`;
  const where = {
    path: error.path,
    offset: error.offset,
    structure: error.structure,
    cause: error,
  };
  return error instanceof Qcow2Error
    ? new Qcow2Error(error.code as Qcow2ErrorCode, message, where)
    : new BlockIoError(error.code, message, where);
}
