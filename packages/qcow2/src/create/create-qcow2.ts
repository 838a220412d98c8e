import { dirname, isAbsolute, resolve } from 'node:path';
import {
  BlockIoError,
  createOutputFile,
  FileDevice,
  isPowerOfTwo,
  type OutputFile,
} from '@x/blockio';
import { Qcow2Error } from '../errors.js';
import {
  MAX_CLUSTER_BITS,
  MIN_CLUSTER_BITS,
  QCOW_MAGIC,
  QCOW2_AUTOCLEAR_DATA_FILE_RAW,
  QCOW2_COMPAT_LAZY_REFCOUNTS,
  QCOW2_INCOMPAT_COMPRESSION,
  QCOW2_INCOMPAT_DATA_FILE,
  QCOW2_INCOMPAT_EXTL2,
  QCOW2_MAX_BACKING_FILE_SIZE,
  QCOW2_V3_HEADER_LENGTH,
} from '../format/constants.js';
import type { Qcow2Header } from '../format/header.js';
import { readQcow2Metadata } from '../format/image-metadata.js';
import { openQcow2 } from '../image/open.js';
import type { Qcow2Image } from '../image/qcow2-image.js';
import { encodeHeaderCluster, type HeaderState, rewriteHeader } from '../write/header-writer.js';
import { Qcow2Writer } from '../write/writer.js';

export interface CreateQcow2Options {
  /** Virtual size in bytes (rounded up to 512). Default: the backing file's size. */
  size?: number | undefined;
  /** 3 (compat 1.1, default) or 2 (compat 0.10). */
  version?: 2 | 3 | undefined;
  /** Power of two from 512 B to 2 MiB. Default 64 KiB. */
  clusterSize?: number | undefined;
  /** 1, 2, 4, 8, 16 (default), 32 or 64; version 2 allows only 16. */
  refcountBits?: number | undefined;
  /** Backing file name as stored in the header (relative names are relative to the image). */
  backingFile?: string | undefined;
  backingFormat?: 'qcow2' | 'raw' | undefined;
  lazyRefcounts?: boolean | undefined;
  /** 32 subclusters per cluster; clusters of at least 16 KiB. */
  extendedL2?: boolean | undefined;
  compressionType?: 'zlib' | 'zstd' | undefined;
  preallocation?: 'off' | 'metadata' | undefined;
  /** External data file name as stored in the header (created beside the image). */
  dataFile?: string | undefined;
  /** The data file is a valid raw image on its own (implies metadata preallocation). */
  dataFileRaw?: boolean | undefined;
  /** Replace an existing file. Default: refuse. */
  overwrite?: boolean | undefined;
}

/**
 * Creates a qcow2 image the way `qemu-img create -f qcow2` does, step for
 * step, so the file is byte for byte the same: the header, a one-cluster
 * refcount table and one refcount block; then, through our own write path,
 * the refcounts of those three clusters, the full header with its extensions,
 * the L1 table for the size (and preallocated L2 tables and clusters), and
 * last the backing file name. The image is written as `<path>.partial` and
 * renamed into place when complete.
 */
export async function createQcow2(path: string, options: CreateQcow2Options = {}): Promise<void> {
  const output = await createOutputFile(path, { overwrite: options.overwrite ?? false });
  try {
    const image = await createQcow2In(output, options);
    await image.close();
    await output.commit();
  } catch (error) {
    await output.abort();
    throw error;
  }
}

/**
 * createQcow2's steps into a fresh `createOutputFile` output the caller owns,
 * so a new image can be filled before it appears under its name: returns the
 * image open for writing (on `output.partialPath`). The caller writes, then
 * commits the output, which first closes the image (flushing its tables and
 * refcounts) if the caller has not; on failure it closes the image and aborts
 * the output, which removes the partial file. `options.overwrite` only concerns an
 * external data file here: the output decided about the image file itself.
 */
export async function createQcow2In(
  output: OutputFile,
  options: CreateQcow2Options = {},
): Promise<Qcow2Image> {
  const path = output.path;
  const settings = await validate(path, options);
  const clusterSize = settings.clusterSize;
  const state: HeaderState = {
    header: settings.header,
    backingFile: undefined,
    backingFormat: undefined,
    dataFile: options.dataFile,
    cryptoHeader: undefined,
    bitmaps: undefined,
    unknownExtensions: [],
  };
  // Cluster 0: header; cluster 1: refcount table pointing at cluster 2; cluster 2: refcount block.
  const initial = Buffer.alloc(3 * clusterSize);
  encodeHeaderCluster(state, clusterSize, path).copy(initial, 0);
  initial.writeBigUInt64BE(BigInt(2 * clusterSize), clusterSize);
  await output.device.write(0, initial);
  if (options.dataFile !== undefined) await createDataFile(path, options.dataFile, options);

  const image = await openQcow2(output.partialPath, { writable: true, backingPolicy: 'allow' });
  try {
    const writer = image.writePath;
    if (!(writer instanceof Qcow2Writer)) {
      throw new Qcow2Error('UNSUPPORTED', 'the image has no qcow2 writer', { path });
    }
    await writer.exclusive(async () => {
      await writer.refcounts.allocClusters(3 * clusterSize);
      await rewriteHeader(writer.file, writer.state, clusterSize);
    });
    await writer.resize(settings.size, { preallocation: options.preallocation ?? 'off' });
    if (options.backingFile !== undefined) {
      await writer.exclusive(async () => {
        writer.state.backingFile = options.backingFile;
        writer.state.backingFormat = options.backingFormat;
        await rewriteHeader(writer.file, writer.state, clusterSize);
      });
    }
    // Committing before closing would publish an image whose tables and refcounts
    // are still in memory: the output closes the image first (a no-op once closed).
    output.beforeCommit(() => image.close());
    return image;
  } catch (error) {
    await image.close().catch(() => {});
    throw error;
  }
}

interface Settings {
  size: number;
  clusterSize: number;
  header: Qcow2Header;
}

async function validate(path: string, options: CreateQcow2Options): Promise<Settings> {
  const invalid = (message: string) =>
    new BlockIoError('INVALID_ARGUMENT', message, { path, structure: 'create options' });
  const version = options.version ?? 3;
  const clusterSize = options.clusterSize ?? 65536;
  const refcountBits = options.refcountBits ?? 16;
  const compressionType = options.compressionType ?? 'zlib';
  if (version !== 2 && version !== 3) throw invalid(`version must be 2 or 3, not ${version}`);
  if (
    !isPowerOfTwo(clusterSize) ||
    clusterSize < 2 ** MIN_CLUSTER_BITS ||
    clusterSize > 2 ** MAX_CLUSTER_BITS
  ) {
    throw invalid('cluster size must be a power of two between 512 and 2 MiB');
  }
  if (!isPowerOfTwo(refcountBits) || refcountBits > 64) {
    throw invalid('refcount bits must be a power of two no larger than 64');
  }
  if (version === 2) {
    if (refcountBits !== 16) throw invalid('refcount widths other than 16 bits need version 3');
    if (options.lazyRefcounts) throw invalid('lazy refcounts need version 3');
    if (options.dataFile !== undefined) throw invalid('external data files need version 3');
    if (options.extendedL2) throw invalid('extended L2 entries need version 3');
    if (compressionType !== 'zlib')
      throw invalid('compression types other than zlib need version 3');
  }
  if (options.extendedL2 && clusterSize < 16384) {
    throw invalid('extended L2 entries need clusters of at least 16 KiB');
  }
  if (options.backingFormat !== undefined && options.backingFile === undefined) {
    throw invalid('a backing format needs a backing file');
  }
  if (options.dataFileRaw && options.dataFile === undefined) {
    throw invalid('dataFileRaw needs a data file');
  }
  if (options.dataFileRaw && options.backingFile !== undefined) {
    throw invalid('a backing file and a raw data file cannot be used together');
  }
  if (
    options.backingFile !== undefined &&
    (options.preallocation ?? 'off') !== 'off' &&
    !options.extendedL2
  ) {
    throw invalid('a backing file and preallocation can only be combined with extended L2');
  }
  if (
    options.backingFile !== undefined &&
    Buffer.byteLength(options.backingFile) > QCOW2_MAX_BACKING_FILE_SIZE
  ) {
    throw invalid('the backing file name is longer than 1023 bytes');
  }
  let size = options.size;
  if (size === undefined) {
    if (options.backingFile === undefined) throw invalid('a size is needed without a backing file');
    size = await backingSize(path, options.backingFile, options.backingFormat);
  }
  if (!Number.isSafeInteger(size) || size < 0) throw invalid(`size ${size} is not a byte count`);
  size = Math.ceil(size / 512) * 512;

  let incompatible = 0n;
  if (options.dataFile !== undefined) incompatible |= QCOW2_INCOMPAT_DATA_FILE;
  if (compressionType !== 'zlib') incompatible |= QCOW2_INCOMPAT_COMPRESSION;
  if (options.extendedL2) incompatible |= QCOW2_INCOMPAT_EXTL2;
  const header: Qcow2Header = {
    magic: QCOW_MAGIC,
    version,
    backingFileOffset: 0n,
    backingFileSize: 0,
    clusterBits: Math.log2(clusterSize),
    size: 0n,
    cryptMethod: 0,
    l1Size: 0,
    l1TableOffset: 0n,
    refcountTableOffset: BigInt(clusterSize),
    refcountTableClusters: 1,
    nbSnapshots: 0,
    snapshotsOffset: 0n,
    incompatibleFeatures: version >= 3 ? incompatible : 0n,
    compatibleFeatures: options.lazyRefcounts ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0n,
    autoclearFeatures: options.dataFileRaw ? QCOW2_AUTOCLEAR_DATA_FILE_RAW : 0n,
    refcountOrder: Math.log2(refcountBits),
    headerLength: version >= 3 ? QCOW2_V3_HEADER_LENGTH : 72,
    compressionType: compressionType === 'zstd' ? 1 : 0,
    unknownHeaderBytes: new Uint8Array(0),
  };
  return { size, clusterSize, header };
}

/** The virtual size of the backing file (qemu-img create takes it when no size is given). */
async function backingSize(
  imagePath: string,
  backingFile: string,
  format: 'qcow2' | 'raw' | undefined,
): Promise<number> {
  const backingPath = isAbsolute(backingFile)
    ? backingFile
    : resolve(dirname(imagePath), backingFile);
  const file = await FileDevice.open(backingPath);
  try {
    const magic = file.size >= 4 ? (await file.read(0, 4)).readUInt32BE(0) : 0;
    if (format === 'qcow2' || (format === undefined && magic === QCOW_MAGIC)) {
      return (await readQcow2Metadata(file)).virtualSize;
    }
    return file.size;
  } finally {
    await file.close();
  }
}

/** Creates (or empties) the external data file; the image's resize sizes it. */
async function createDataFile(
  imagePath: string,
  dataFile: string,
  options: CreateQcow2Options,
): Promise<void> {
  const dataPath = isAbsolute(dataFile) ? dataFile : resolve(dirname(imagePath), dataFile);
  const device = await FileDevice.open(dataPath, { create: true });
  try {
    if (device.size > 0 && !options.overwrite) {
      throw new BlockIoError('EEXIST', 'the external data file already exists', { path: dataPath });
    }
    await device.truncate(0);
  } finally {
    await device.close();
  }
}
