import { stat } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { BlockIoError, FileDevice, fromSystemError, type LongRunningOptions } from '@x/blockio';
import { backingOpenError } from '../backing/backing-open-error.js';
import {
  type BackingPolicy,
  checkBackingDepth,
  checkPolicy,
  resolveNamedFile,
} from '../backing/policy.js';
import { Qcow2Error } from '../errors.js';
import {
  QCOW_CRYPT_LUKS,
  QCOW_MAGIC,
  QCOW2_COMPAT_LAZY_REFCOUNTS,
  QCOW2_EXT_MAGIC_BACKING_FORMAT,
  QCOW2_EXT_MAGIC_BITMAPS,
  QCOW2_EXT_MAGIC_CRYPTO_HEADER,
  QCOW2_EXT_MAGIC_DATA_FILE,
  QCOW2_EXT_MAGIC_FEATURE_TABLE,
  QCOW2_INCOMPAT_CORRUPT,
  QCOW2_INCOMPAT_DIRTY,
} from '../format/constants.js';
import { nameFeatureBits } from '../format/header-extensions.js';
import { type Qcow2Metadata, readQcow2Metadata } from '../format/image-metadata.js';
import { openQcow2 } from '../image/open.js';
import { type AllocationFigures, allocationFigures } from './allocation.js';

/** A snapshot as qemu-img info --output=json lists it. */
export interface SnapshotInfo {
  id: string;
  name: string;
  'vm-state-size': number;
  'date-sec': number;
  'date-nsec': number;
  'vm-clock-sec': number;
  'vm-clock-nsec': number;
  icount?: number;
}

export interface Qcow2FormatSpecific {
  type: 'qcow2';
  data: {
    compat: '0.10' | '1.1';
    'compression-type': 'zlib' | 'zstd';
    'lazy-refcounts'?: boolean;
    'refcount-bits': number;
    corrupt?: boolean;
    'extended-l2'?: boolean;
    'data-file'?: string;
    'data-file-raw'?: boolean;
    encrypt?: { format: 'luks' | 'aes' };
  };
}

export interface HeaderExtensionInfo {
  /** The extension's magic as 0x-prefixed hex. */
  type: string;
  name: string;
  /** Byte offset of the extension's header in the image. */
  offset: number;
  length: number;
}

/**
 * What `qemu-img info --output=json` prints (same keys where they overlap), plus
 * what it does not: the header version, every feature bit by name, the header
 * extensions, and allocation/fragmentation figures.
 */
export interface ImageInfo {
  filename: string;
  format: 'qcow2' | 'raw';
  'virtual-size': number;
  'cluster-size'?: number;
  'actual-size': number;
  'dirty-flag': boolean;
  encrypted?: true;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
  snapshots?: SnapshotInfo[];
  'format-specific'?: Qcow2FormatSpecific;
  /** Ours, not qemu-img's: */
  version?: number;
  'file-length'?: number;
  features?: { incompatible: string[]; compatible: string[]; autoclear: string[] };
  'header-extensions'?: HeaderExtensionInfo[];
  allocation?: AllocationFigures;
  /**
   * What could not be read (a damaged image): the rest of the document is what
   * could. Absent when everything was read. `qcow2 check` diagnoses further.
   */
  problems?: InfoProblem[];
}

/** Something `imageInfo` could not read, as a BlockIoError's JSON names it. */
export interface InfoProblem {
  code: string;
  message: string;
  structure?: string | undefined;
  offset?: number | string | undefined;
}

export interface ImageInfoOptions extends LongRunningOptions {
  /** Who may open the files the image names; only consulted for `backingChainInfo`. */
  backingPolicy?: BackingPolicy | undefined;
  /** Skip the L1/L2 walk behind `allocation` (fast on huge images). Default false. */
  skipAllocation?: boolean | undefined;
  /** Read the file as this format instead of detecting it by its magic (`qemu-img info -f`). */
  format?: 'qcow2' | 'raw' | undefined;
}

const EXTENSION_NAMES: Record<number, string> = {
  [QCOW2_EXT_MAGIC_BACKING_FORMAT]: 'backing file format',
  [QCOW2_EXT_MAGIC_FEATURE_TABLE]: 'feature name table',
  [QCOW2_EXT_MAGIC_BITMAPS]: 'bitmaps',
  [QCOW2_EXT_MAGIC_CRYPTO_HEADER]: 'full disk encryption header pointer',
  [QCOW2_EXT_MAGIC_DATA_FILE]: 'external data file name',
};

/**
 * Facts about one image file (qcow2 or raw, detected by magic). Encrypted
 * images are described (not refused); their allocation is not walked. Opens
 * no file the image names. A damaged image is described as far as it can be
 * read, as qemu-img info does: what could not be read is listed in `problems`
 * (a header too damaged to read at all still throws).
 */
export async function imageInfo(path: string, options: ImageInfoOptions = {}): Promise<ImageInfo> {
  const file = await FileDevice.open(path);
  let metadata: Qcow2Metadata | undefined;
  try {
    const magic = file.size >= 4 ? (await file.read(0, 4)).readUInt32BE(0) : 0;
    const format = options.format ?? (magic === QCOW_MAGIC ? 'qcow2' : 'raw');
    if (format === 'qcow2') {
      metadata = await readQcow2Metadata(file, { allowEncrypted: true, lenient: true });
    }
  } finally {
    await file.close();
  }
  const actualSize = await allocatedSize(path);
  if (!metadata) {
    return {
      'virtual-size': file.size,
      filename: path,
      format: 'raw',
      'actual-size': actualSize,
      'dirty-flag': false,
    };
  }
  return qcow2Info(path, metadata, actualSize, options);
}

async function qcow2Info(
  path: string,
  metadata: Qcow2Metadata,
  fileAllocated: number,
  options: ImageInfoOptions,
): Promise<ImageInfo> {
  const { header } = metadata;
  const v3 = header.version >= 3;
  const incompatible = header.incompatibleFeatures;
  const info: ImageInfo = {
    'virtual-size': metadata.virtualSize,
    filename: path,
    'cluster-size': metadata.geometry.clusterSize,
    format: 'qcow2',
    'actual-size': fileAllocated,
    'dirty-flag': (incompatible & QCOW2_INCOMPAT_DIRTY) !== 0n,
  };
  if (metadata.encrypted) info.encrypted = true;
  if (metadata.backingFile !== undefined) {
    info['backing-filename'] = metadata.backingFile;
    info['full-backing-filename'] = isAbsolute(metadata.backingFile)
      ? metadata.backingFile
      : join(dirname(path), metadata.backingFile);
    if (metadata.backingFormat !== undefined) {
      info['backing-filename-format'] = metadata.backingFormat;
    }
  }
  if (metadata.snapshots.length > 0) {
    info.snapshots = metadata.snapshots.map((snapshot) => {
      const entry: SnapshotInfo = {
        id: snapshot.id,
        name: snapshot.name,
        'vm-state-size': Number(snapshot.vmStateSize),
        'date-sec': snapshot.dateSec,
        'date-nsec': snapshot.dateNsec,
        'vm-clock-sec': Number(snapshot.vmClockNsec / 1_000_000_000n),
        'vm-clock-nsec': Number(snapshot.vmClockNsec % 1_000_000_000n),
      };
      if (snapshot.icount !== undefined && snapshot.icount !== 0xffffffffffffffffn) {
        entry.icount = Number(snapshot.icount);
      }
      return entry;
    });
  }
  const data: Qcow2FormatSpecific['data'] = {
    compat: v3 ? '1.1' : '0.10',
    'compression-type': metadata.compressionType,
    'refcount-bits': metadata.geometry.refcountBits,
  };
  if (v3) {
    data['lazy-refcounts'] = (header.compatibleFeatures & QCOW2_COMPAT_LAZY_REFCOUNTS) !== 0n;
    if (metadata.dataFile !== undefined) {
      data['data-file'] = metadata.dataFile;
      data['data-file-raw'] = metadata.dataFileRaw;
    }
    data.corrupt = (incompatible & QCOW2_INCOMPAT_CORRUPT) !== 0n;
    data['extended-l2'] = metadata.geometry.extendedL2;
  }
  if (metadata.encrypted) {
    data.encrypt = { format: header.cryptMethod === QCOW_CRYPT_LUKS ? 'luks' : 'aes' };
  }
  info['format-specific'] = { type: 'qcow2', data };

  info.version = header.version;
  info['file-length'] = metadata.fileSize;
  const names = metadata.extensions.featureNames;
  info.features = {
    incompatible: nameFeatureBits(incompatible, 'incompatible', names),
    compatible: nameFeatureBits(header.compatibleFeatures, 'compatible', names),
    autoclear: nameFeatureBits(header.autoclearFeatures, 'autoclear', names),
  };
  info['header-extensions'] = metadata.extensions.all.map((extension) => ({
    type: `0x${extension.type.toString(16).padStart(8, '0')}`,
    name: EXTENSION_NAMES[extension.type] ?? 'unknown',
    offset: extension.offset,
    length: extension.data.byteLength,
  }));

  const problems: unknown[] = [...metadata.problems];
  if (!metadata.encrypted && !options.skipAllocation && metadata.problems.length === 0) {
    try {
      const image = await openQcow2(path, dataFileAccess(metadata));
      try {
        info.allocation = await allocationFigures(image, options);
      } finally {
        await image.close();
      }
    } catch (error) {
      // The header is printed anyway; the tables behind the figures are damaged.
      if (!(error instanceof BlockIoError) || error.code === 'ABORTED') throw error;
      problems.push(error);
    }
  }
  if (problems.length > 0) info.problems = problems.map(describeProblem);
  return info;
}

function describeProblem(error: unknown): InfoProblem {
  const json = (error as BlockIoError).toJSON();
  return {
    code: String(json.code),
    message: String(json.message),
    structure: json.structure as string | undefined,
    offset: json.offset as number | string | undefined,
  };
}

/** The data file is needed to open the image; mapping never reads it. */
function dataFileAccess(metadata: Qcow2Metadata): { backingPolicy: BackingPolicy } {
  return { backingPolicy: metadata.dataFile !== undefined ? 'allow' : 'ignore' };
}

/**
 * `imageInfo` for the image and every file below it in the backing chain, top
 * first (qemu-img info --backing-chain). Opening the backing files follows
 * the backing policy (default deny).
 */
export async function backingChainInfo(
  path: string,
  options: ImageInfoOptions = {},
): Promise<ImageInfo[]> {
  const chain: ImageInfo[] = [];
  const seen = new Set<string>();
  let current: string | undefined = path;
  while (current !== undefined) {
    const identity = await fileIdentity(current);
    if (seen.has(identity)) {
      throw new Qcow2Error(
        'BACKING_LOOP',
        'the backing chain refers back to an image already in it',
        {
          path: current,
          structure: 'backing file',
        },
      );
    }
    seen.add(identity);
    const info = await imageInfo(current, options);
    chain.push(info);
    const name = info['backing-filename'];
    if (name === undefined) break;
    checkPolicy(options.backingPolicy ?? 'deny', current, name, 'backing file');
    // The backing file is chain.length levels below the top: openQcow2's rule.
    checkBackingDepth(chain.length, current);
    const resolved = resolveNamedFile(current, name, 'backing file');
    // Report it under the name qemu-img would print (relative to how we were called).
    const next: string = info['full-backing-filename'] ?? resolved;
    // A missing backing file is reported as the backing file of the image naming it.
    await fileIdentity(next).catch((error: unknown) => {
      throw backingOpenError(error, next, current as string);
    });
    current = next;
  }
  return chain;
}

async function allocatedSize(path: string): Promise<number> {
  try {
    return (await stat(path)).blocks * 512;
  } catch (error) {
    throw fromSystemError(error, 'inspect', { path });
  }
}

async function fileIdentity(path: string): Promise<string> {
  try {
    const info = await stat(path, { bigint: true });
    return `${info.dev}:${info.ino}`;
  } catch (error) {
    throw fromSystemError(error, 'open for reading', { path });
  }
}
