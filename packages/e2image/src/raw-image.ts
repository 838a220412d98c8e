import {
  type BlockDevice,
  type ByteRange,
  copy,
  createOutputFile,
  type DrainableStream,
  ExtentSet,
  isAllZero,
  type LongRunningOptions,
  ProgressTracker,
  SliceDevice,
  throwIfAborted,
  waitForDrain,
  zeroBuffer,
} from '@x/blockio';
import type { Filesystem } from './filesystem.js';
import {
  type CollectMetadataOptions,
  collectMetadata,
  type MetadataSet,
} from './metadata-extents.js';
import { DirectoryScrambler, MetadataSourceDevice } from './scramble.js';

export interface RawImageOptions extends LongRunningOptions {
  /** e2image -a */
  allData?: boolean | undefined;
  /** e2image -s */
  scramble?: boolean | undefined;
  /** A metadata set already collected (otherwise it is collected here). */
  metadata?: MetadataSet | undefined;
  /** Passed to collectMetadata. */
  collect?: Omit<CollectMetadataOptions, 'allData' | 'signal' | 'onProgress'> | undefined;
  /**
   * The target reads as zeros where nothing is written (a new file): all-zero
   * metadata blocks are then skipped, as e2image does for a new output file.
   * Default: what the target says.
   */
  targetIsZeroed?: boolean | undefined;
  /** Issue writes one at a time in ascending order (targets whose layout follows write order). */
  orderedWrites?: boolean | undefined;
  /**
   * Write the inode tables as the metadata scan reads them, ahead of everything
   * else, instead of reading them a second time for the copy: for targets that
   * do not care about write order (a new file). Needs a zeroed target and no
   * `metadata`. Default false.
   */
  inodeTablesEarly?: boolean | undefined;
}

export interface RawImageResult {
  /** Filesystem blocks in the metadata set (e2image's "blocks copied"). */
  blocks: number;
  /** Bytes of the set. */
  bytesTotal: number;
  /** Bytes actually written (all-zero blocks are holes). */
  bytesWritten: number;
  /** Size of the image: the filesystem's size. */
  imageSize: number;
}

/** The bytes a filesystem occupies: what a raw image's length must be. */
export function filesystemBytes(fs: Filesystem): number {
  return fs.blocksCount * fs.blockSize;
}

/**
 * Builds the source side of an image copy: the filesystem's device, with
 * directory blocks scrambled when asked.
 */
export function metadataSource(
  fs: Filesystem,
  metadata: MetadataSet,
  scramble: boolean,
): MetadataSourceDevice {
  return new MetadataSourceDevice(
    fs.device,
    fs.blockSize,
    scramble
      ? {
          directories: metadata.directoryExtents,
          scrambler: new DirectoryScrambler(fs.blockSize, (warning) => fs.warn(warning)),
        }
      : undefined,
  );
}

/**
 * The metadata ranges that the device can supply. Blocks past the end of a
 * truncated device cannot be copied; e2image complains per block and carries on,
 * so they are left as holes here (the open() warning already named the device).
 */
export function readableRanges(fs: Filesystem, extents: ExtentSet): ByteRange[] {
  const limit = fs.device.size;
  const ranges: ByteRange[] = [];
  for (const range of extents) {
    if (range.offset >= limit) break;
    ranges.push({ offset: range.offset, length: Math.min(range.length, limit - range.offset) });
  }
  return ranges;
}

/**
 * e2image -r into `target` (offset 0 = the filesystem's first byte): every
 * metadata block at its own offset, holes elsewhere, and the target at least the
 * filesystem's size. Byte-identical to e2fsprogs' output for the same source.
 */
export async function writeRawImage(
  fs: Filesystem,
  target: BlockDevice,
  options: RawImageOptions = {},
): Promise<RawImageResult> {
  // On a target that reads as zeros and takes writes in any order, the inode
  // tables are written as the scan reads them (a third of the metadata of a
  // filesystem with many files), so the copy below need not read them again.
  const early =
    (options.inodeTablesEarly ?? false) &&
    options.metadata === undefined &&
    (options.targetIsZeroed ?? false) &&
    !options.orderedWrites &&
    fs.clusterRatio === 1
      ? new EarlyTableWriter(fs, target)
      : undefined;
  const metadata =
    options.metadata ??
    (await collectMetadata(fs, {
      ...options.collect,
      allData: options.allData,
      signal: options.signal,
      onProgress: options.onProgress,
      onInodeTableBlocks: early?.write,
    }));
  const scramble = options.scramble ?? false;
  const source = metadataSource(fs, metadata, scramble);
  const remaining = early ? metadata.extents.subtract(early.written) : metadata.extents;
  const result = await copy(source, target, {
    ranges: readableRanges(fs, remaining),
    sparse: true,
    targetIsZeroed: options.targetIsZeroed,
    zeroGranularity: fs.blockSize,
    // Scrambled names are numbered in block order, so those reads must be in order.
    // Otherwise as many in flight as the devices take (one for synchronous files:
    // more would only interleave the blocks and evict each buffer before its write).
    concurrency:
      scramble || options.orderedWrites
        ? 1
        : Math.min(fs.device.queueDepth ?? 4, target.queueDepth ?? 4),
    signal: options.signal,
    onProgress: options.onProgress,
    phase: 'copy metadata',
  });
  const imageSize = filesystemBytes(fs);
  if (target.size < imageSize) {
    // e2image ends a sparse image with ftruncate: the image is as long as the filesystem.
    await target.writeZeroes(target.size, imageSize - target.size);
  }
  return {
    blocks: metadata.blockCount,
    bytesTotal: metadata.extents.totalBytes,
    bytesWritten: result.bytesWritten + (early?.bytesWritten ?? 0),
    imageSize,
  };
}

/** Writes inode table blocks handed over by the scan: non-zero blocks only, as the copy would. */
class EarlyTableWriter {
  /** Byte ranges dealt with (written, or all zero and left as holes). */
  readonly written = new ExtentSet();
  bytesWritten = 0;
  readonly #fs: Filesystem;
  readonly #target: BlockDevice;

  constructor(fs: Filesystem, target: BlockDevice) {
    this.#fs = fs;
    this.#target = target;
  }

  readonly write = async (block: number, bytes: Buffer): Promise<void> => {
    const blockSize = this.#fs.blockSize;
    const offset = block * blockSize;
    // Past the end of a truncated device the copy's own rules apply.
    if (offset + bytes.length > this.#fs.device.size) return;
    let runStart = -1;
    for (let at = 0; at <= bytes.length; at += blockSize) {
      const zero = at === bytes.length || isAllZero(bytes.subarray(at, at + blockSize));
      if (!zero && runStart < 0) runStart = at;
      if (zero && runStart >= 0) {
        await this.#target.write(offset + runStart, bytes.subarray(runStart, at));
        this.bytesWritten += at - runStart;
        runStart = -1;
      }
    }
    this.written.add(offset, bytes.length);
  };
}

export interface RawImageFileOptions extends RawImageOptions {
  /** e2image -O: write the image this many bytes into the output file. */
  destinationOffset?: number | undefined;
  /** Replace an existing output file (atomically). Default true, like e2image. */
  overwrite?: boolean | undefined;
  /** fsync the image before it is renamed into place. Default true. */
  sync?: boolean | undefined;
}

/**
 * e2image -r to a new file: written under `<path>.partial`, moved into place when
 * complete, removed on error or abort.
 */
export async function writeRawImageFile(
  fs: Filesystem,
  path: string,
  options: RawImageFileOptions = {},
): Promise<RawImageResult> {
  const output = await createOutputFile(path, {
    overwrite: options.overwrite ?? true,
    sync: options.sync ?? true,
  });
  try {
    const offset = options.destinationOffset ?? 0;
    const target = offset > 0 ? new SliceDevice(output.device, offset) : output.device;
    const result = await writeRawImage(fs, target, {
      ...options,
      targetIsZeroed: true,
      inodeTablesEarly: !(options.orderedWrites ?? false),
    });
    throwIfAborted(options.signal, path);
    await output.commit();
    return result;
  } catch (error) {
    await output.abort();
    throw error;
  }
}

/** Something raw image bytes can be streamed to (process.stdout, a socket, a file stream). */
export interface ByteSink extends DrainableStream {
  write(chunk: Uint8Array): boolean;
}

/**
 * e2image -r to a stream ("-" as output): the whole filesystem length in order,
 * zeros for everything that is not metadata.
 */
export async function streamRawImage(
  fs: Filesystem,
  sink: ByteSink,
  options: RawImageOptions = {},
): Promise<RawImageResult> {
  const metadata =
    options.metadata ??
    (await collectMetadata(fs, {
      ...options.collect,
      allData: options.allData,
      signal: options.signal,
      onProgress: options.onProgress,
    }));
  const source = metadataSource(fs, metadata, options.scramble ?? false);
  const imageSize = filesystemBytes(fs);
  const progress = new ProgressTracker('copy metadata', imageSize, options.onProgress);
  const chunk = 1 << 20;
  const buffer = Buffer.allocUnsafe(chunk);
  let bytesWritten = 0;
  let position = 0;
  const emit = async (bytes: Uint8Array) => {
    if (!sink.write(bytes)) await waitForDrain(sink, { signal: options.signal });
    progress.advance(bytes.byteLength);
  };
  const emitZeroes = async (length: number) => {
    let left = length;
    while (left > 0) {
      throwIfAborted(options.signal, fs.device.name);
      const piece = Math.min(chunk, left);
      // A fresh copy each time: a stream may hold on to what it was given.
      await emit(Buffer.from(zeroBuffer(piece)));
      left -= piece;
    }
  };
  for (const range of readableRanges(fs, metadata.extents)) {
    await emitZeroes(range.offset - position);
    let at = range.offset;
    const end = range.offset + range.length;
    while (at < end) {
      throwIfAborted(options.signal, fs.device.name);
      const length = Math.min(chunk, end - at);
      const view = buffer.subarray(0, length);
      await source.read(at, view);
      if (!isAllZero(view)) bytesWritten += length;
      await emit(Buffer.from(view));
      at += length;
    }
    position = end;
  }
  await emitZeroes(imageSize - position);
  progress.finish();
  return {
    blocks: metadata.blockCount,
    bytesTotal: metadata.extents.totalBytes,
    bytesWritten,
    imageSize,
  };
}

/** Every byte of `device`, in order, to a stream ("-" as the output of a QCOW2 → raw conversion). */
export async function streamDevice(
  device: BlockDevice,
  sink: ByteSink,
  options: LongRunningOptions = {},
): Promise<{ bytesWritten: number }> {
  const progress = new ProgressTracker('convert', device.size, options.onProgress);
  const chunk = 1 << 20;
  let bytesWritten = 0;
  for (let at = 0; at < device.size; at += chunk) {
    throwIfAborted(options.signal, device.name);
    const bytes = await device.read(at, Math.min(chunk, device.size - at));
    if (!isAllZero(bytes)) bytesWritten += bytes.length;
    if (!sink.write(bytes)) await waitForDrain(sink, { signal: options.signal });
    progress.advance(bytes.length);
  }
  progress.finish();
  return { bytesWritten };
}
