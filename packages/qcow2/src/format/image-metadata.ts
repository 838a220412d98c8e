import { type BlockDevice, toSafeNumber } from '@x/blockio';
import { Qcow2Error } from '../errors.js';
import {
  MAX_CLUSTER_BITS,
  MIN_CLUSTER_BITS,
  MIN_EXTENDED_L2_CLUSTER_BITS,
  QCOW_CRYPT_NONE,
  QCOW_MAGIC,
  QCOW_MAX_L1_SIZE,
  QCOW_MAX_REFCOUNT_ORDER,
  QCOW_MAX_REFTABLE_SIZE,
  QCOW_MAX_SNAPSHOTS,
  QCOW_MAX_SNAPSHOTS_SIZE,
  QCOW2_AUTOCLEAR_DATA_FILE_RAW,
  QCOW2_COMPRESSION_TYPE_ZLIB,
  QCOW2_COMPRESSION_TYPE_ZSTD,
  QCOW2_INCOMPAT_COMPRESSION,
  QCOW2_INCOMPAT_DATA_FILE,
  QCOW2_INCOMPAT_EXTL2,
  QCOW2_INCOMPAT_MASK,
  QCOW2_MAX_BACKING_FILE_SIZE,
  QCOW2_V2_HEADER_LENGTH,
  QCOW2_V3_MIN_HEADER_LENGTH,
} from './constants.js';
import { Qcow2Geometry } from './geometry.js';
import { decodeHeader, type Qcow2Header } from './header.js';
import {
  type HeaderExtensions,
  nameFeatureBits,
  parseHeaderExtensions,
} from './header-extensions.js';
import { parseSnapshotTable, type Snapshot } from './snapshot-table.js';

/** Everything in an image's metadata except the tables themselves. */
export interface Qcow2Metadata {
  path: string;
  fileSize: number;
  header: Qcow2Header;
  geometry: Qcow2Geometry;
  virtualSize: number;
  extensions: HeaderExtensions;
  /** The backing file name as stored in the header (not resolved), if any. */
  backingFile: string | undefined;
  backingFormat: string | undefined;
  /** External data file name (from the header extension), if the image uses one. */
  dataFile: string | undefined;
  dataFileRaw: boolean;
  compressionType: 'zlib' | 'zstd';
  encrypted: boolean;
  l1TableOffset: number;
  l1Size: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  snapshotsOffset: number;
  snapshots: Snapshot[];
  /**
   * Problems found while loading. In strict mode the first one is thrown; in
   * lenient mode (for check/dump/info on damaged images) loading carries on.
   */
  problems: Qcow2Error[];
}

export interface ReadMetadataOptions {
  /** Collect problems instead of throwing (for check, dump and info on damaged images). */
  lenient?: boolean;
  /** Accept encrypted images (info and check only; data stays unreadable). */
  allowEncrypted?: boolean;
  /**
   * The image will be written. Reading needs no refcounts, so a read-only open
   * accepts a refcount table at offset 0 or past the end of the file, as QEMU
   * does (it checks only the table's alignment and size when opening); a writer
   * needs one it can trust.
   */
  writable?: boolean;
}

/**
 * Reads and validates the header, its extensions, the backing file name and the
 * snapshot table, enforcing QEMU's own limits so no header field can make us
 * allocate without bound. Problems are typed Qcow2Errors naming the structure.
 */
export async function readQcow2Metadata(
  file: BlockDevice,
  options: ReadMetadataOptions = {},
): Promise<Qcow2Metadata> {
  const path = file.name;
  const problems: Qcow2Error[] = [];
  const problem = (error: Qcow2Error) => {
    if (!options.lenient) throw error;
    problems.push(error);
  };

  if (file.size < QCOW2_V2_HEADER_LENGTH) {
    const magic = file.size >= 4 ? (await file.read(0, 4)).readUInt32BE(0) : 0;
    throw new Qcow2Error(
      magic === QCOW_MAGIC ? 'CORRUPT' : 'NOT_QCOW2',
      magic === QCOW_MAGIC
        ? `file is only ${file.size} bytes, shorter than a qcow2 header`
        : 'not a qcow2 image (file too short)',
      { path, offset: 0, structure: 'qcow2 header' },
    );
  }
  const first = await file.read(0, Math.min(file.size, 2 ** MAX_CLUSTER_BITS, 4096));
  const magic = first.readUInt32BE(0);
  if (magic !== QCOW_MAGIC) {
    throw new Qcow2Error(
      'NOT_QCOW2',
      `not a qcow2 image (magic 0x${magic.toString(16).padStart(8, '0')}, expected 0x514649fb)`,
      {
        path,
        offset: 0,
        structure: 'qcow2 header',
      },
    );
  }
  const version = first.readUInt32BE(4);
  if (version !== 2 && version !== 3) {
    throw new Qcow2Error(
      'UNSUPPORTED',
      `qcow2 version ${version} is not supported (only 2 and 3)`,
      {
        path,
        offset: 4,
        structure: 'qcow2 header',
      },
    );
  }
  const clusterBits = first.readUInt32BE(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw new Qcow2Error(
      'UNSUPPORTED',
      `cluster_bits is ${clusterBits}; cluster sizes from 512 bytes (9) to 2 MiB (21) are supported`,
      { path, offset: 20, structure: 'qcow2 header' },
    );
  }
  const clusterSize = 2 ** clusterBits;
  // The header, its extensions and the backing file name all live in cluster 0.
  const cluster0 = Buffer.alloc(clusterSize);
  await file.read(0, cluster0.subarray(0, Math.min(clusterSize, file.size)));
  const header = decodeHeader(cluster0);
  const where = (offset: number, structure = 'qcow2 header') => ({ path, offset, structure });

  if (version === 3) {
    if (header.headerLength < QCOW2_V3_MIN_HEADER_LENGTH || header.headerLength > clusterSize) {
      throw new Qcow2Error(
        'CORRUPT',
        `header_length is ${header.headerLength}; it must be at least ${QCOW2_V3_MIN_HEADER_LENGTH} and fit in one cluster`,
        where(100),
      );
    }
    if (header.headerLength % 8 !== 0) {
      problem(
        new Qcow2Error(
          'CORRUPT',
          `header_length ${header.headerLength} is not a multiple of 8`,
          where(100),
        ),
      );
    }
  }

  const extensionsStart = version === 2 ? QCOW2_V2_HEADER_LENGTH : header.headerLength;
  let extensions: HeaderExtensions;
  try {
    extensions = parseHeaderExtensions(cluster0, extensionsStart, path);
  } catch (error) {
    if (!(error instanceof Qcow2Error) || !options.lenient) throw error;
    problems.push(error);
    extensions = { all: [], featureNames: [], unknown: [], end: extensionsStart };
  }

  const unknownIncompatible = header.incompatibleFeatures & ~QCOW2_INCOMPAT_MASK;
  if (unknownIncompatible !== 0n) {
    const names = nameFeatureBits(unknownIncompatible, 'incompatible', extensions.featureNames);
    throw new Qcow2Error(
      'UNSUPPORTED',
      `the image uses incompatible features we do not know: ${names.join(', ')}`,
      where(72),
    );
  }

  if (header.cryptMethod > 2) {
    // QEMU: "Unsupported encryption method", whatever else the header says.
    throw new Qcow2Error(
      'UNSUPPORTED',
      `crypt_method ${header.cryptMethod} is unknown (0 none, 1 AES-CBC, 2 LUKS)`,
      where(32),
    );
  }
  const encrypted = header.cryptMethod !== QCOW_CRYPT_NONE;
  if (encrypted && !options.allowEncrypted) {
    throw new Qcow2Error(
      'ENCRYPTED',
      `the image is encrypted (${header.cryptMethod === 2 ? 'LUKS' : 'AES-CBC'}); encrypted images are detected but not supported`,
      where(32),
    );
  }

  if (header.refcountOrder > QCOW_MAX_REFCOUNT_ORDER) {
    throw new Qcow2Error(
      'UNSUPPORTED',
      `refcount_order ${header.refcountOrder} is above 6 (64-bit refcounts)`,
      where(96),
    );
  }

  const extendedL2 = (header.incompatibleFeatures & QCOW2_INCOMPAT_EXTL2) !== 0n;
  if (extendedL2 && clusterBits < MIN_EXTENDED_L2_CLUSTER_BITS) {
    throw new Qcow2Error(
      'CORRUPT',
      `extended L2 entries need clusters of at least 16 KiB, not ${clusterSize} bytes`,
      where(72),
    );
  }
  const geometry = new Qcow2Geometry(clusterBits, header.refcountOrder, extendedL2);

  let compressionType: 'zlib' | 'zstd' = 'zlib';
  const compressionBit = (header.incompatibleFeatures & QCOW2_INCOMPAT_COMPRESSION) !== 0n;
  if (header.compressionType === QCOW2_COMPRESSION_TYPE_ZSTD) compressionType = 'zstd';
  else if (header.compressionType !== QCOW2_COMPRESSION_TYPE_ZLIB) {
    throw new Qcow2Error(
      'UNSUPPORTED',
      `compression_type ${header.compressionType} is unknown (0 zlib, 1 zstd)`,
      where(104),
    );
  }
  if (compressionBit !== (header.compressionType !== QCOW2_COMPRESSION_TYPE_ZLIB)) {
    problem(
      new Qcow2Error(
        'CORRUPT',
        compressionBit
          ? 'the compression type feature bit is set but compression_type is zlib'
          : `compression_type is ${header.compressionType} but the compression type feature bit is clear`,
        where(72),
      ),
    );
  }

  // QEMU keeps the size in whole sectors (total_sectors = size / 512), so a
  // header size that is not a multiple of 512 (never written by qemu-img or us,
  // which round up) loses its tail there; we show the guest QEMU shows.
  const virtualSize = Math.floor(toSafeNumber(header.size, 'virtual size', where(24)) / 512) * 512;
  const l1TableOffset = toSafeNumber(header.l1TableOffset, 'L1 table offset', where(40));
  const refcountTableOffset = toSafeNumber(
    header.refcountTableOffset,
    'refcount table offset',
    where(48),
  );
  const snapshotsOffset = toSafeNumber(header.snapshotsOffset, 'snapshot table offset', where(64));

  if (header.l1Size * 8 > QCOW_MAX_L1_SIZE) {
    throw new Qcow2Error(
      'TOO_LARGE',
      `L1 table of ${header.l1Size} entries exceeds QEMU's 32 MiB limit`,
      where(36),
    );
  }
  if (header.l1Size < geometry.l1EntriesFor(virtualSize)) {
    problem(
      new Qcow2Error(
        'CORRUPT',
        `L1 table has ${header.l1Size} entries but a ${virtualSize}-byte disk needs ${geometry.l1EntriesFor(virtualSize)}`,
        where(36),
      ),
    );
  }
  checkTablePlacement(
    problem,
    path,
    'L1 table',
    l1TableOffset,
    header.l1Size * 8,
    geometry,
    file.size,
    40,
  );

  if (header.refcountTableClusters * clusterSize > QCOW_MAX_REFTABLE_SIZE) {
    throw new Qcow2Error(
      'TOO_LARGE',
      `refcount table of ${header.refcountTableClusters} clusters exceeds QEMU's 8 MiB limit`,
      where(56),
    );
  }
  if (options.writable) {
    checkTablePlacement(
      problem,
      path,
      'refcount table',
      refcountTableOffset,
      header.refcountTableClusters * clusterSize,
      geometry,
      file.size,
      48,
    );
  } else if (!geometry.isClusterAligned(refcountTableOffset)) {
    problem(
      new Qcow2Error(
        'CORRUPT',
        `refcount table offset 0x${refcountTableOffset.toString(16)} is not a multiple of the cluster size`,
        where(48),
      ),
    );
  }

  let backingFile: string | undefined;
  // A zero-length name is no backing file, as in QEMU (it opens a backing file
  // only when the name it read is not empty).
  if (header.backingFileOffset !== 0n && header.backingFileSize !== 0) {
    const offset = toSafeNumber(header.backingFileOffset, 'backing file name offset', where(8));
    if (header.backingFileSize > QCOW2_MAX_BACKING_FILE_SIZE) {
      throw new Qcow2Error(
        'CORRUPT',
        `backing file name of ${header.backingFileSize} bytes is longer than 1023`,
        where(16),
      );
    }
    if (offset + header.backingFileSize > clusterSize) {
      throw new Qcow2Error(
        'CORRUPT',
        'backing file name does not lie within the first cluster',
        where(8),
      );
    }
    backingFile = cluster0.toString('utf8', offset, offset + header.backingFileSize);
  }

  const dataFileBit = (header.incompatibleFeatures & QCOW2_INCOMPAT_DATA_FILE) !== 0n;
  const dataFileRaw =
    dataFileBit && (header.autoclearFeatures & QCOW2_AUTOCLEAR_DATA_FILE_RAW) !== 0n;
  if (dataFileBit && extensions.dataFile === undefined) {
    problem(
      new Qcow2Error(
        'CORRUPT',
        'the image uses an external data file but does not name it',
        where(72),
      ),
    );
  }

  if (header.nbSnapshots > QCOW_MAX_SNAPSHOTS) {
    throw new Qcow2Error(
      'TOO_LARGE',
      `${header.nbSnapshots} snapshots exceed QEMU's limit of 65536`,
      where(60),
    );
  }
  let snapshots: Snapshot[] = [];
  if (header.nbSnapshots > 0) {
    try {
      snapshots = await readSnapshotTable(file, snapshotsOffset, header.nbSnapshots, geometry, {
        zerosPastEnd: !options.writable,
      });
    } catch (error) {
      if (!(error instanceof Qcow2Error) || !options.lenient) throw error;
      problems.push(error);
    }
  }

  return {
    path,
    fileSize: file.size,
    header,
    geometry,
    virtualSize,
    extensions,
    backingFile,
    backingFormat: extensions.backingFormat,
    dataFile: dataFileBit ? extensions.dataFile : undefined,
    dataFileRaw,
    compressionType,
    encrypted,
    l1TableOffset,
    l1Size: header.l1Size,
    refcountTableOffset,
    refcountTableClusters: header.refcountTableClusters,
    snapshotsOffset,
    snapshots,
    problems,
  };
}

function checkTablePlacement(
  problem: (error: Qcow2Error) => void,
  path: string,
  what: string,
  offset: number,
  length: number,
  geometry: Qcow2Geometry,
  fileSize: number,
  headerField: number,
): void {
  if (length === 0) return;
  if (!geometry.isClusterAligned(offset) || offset === 0) {
    problem(
      new Qcow2Error(
        'CORRUPT',
        `${what} offset 0x${offset.toString(16)} is not a non-zero multiple of the cluster size`,
        { path, offset: headerField, structure: 'qcow2 header' },
      ),
    );
  } else if (offset + length > fileSize) {
    problem(
      new Qcow2Error(
        'CORRUPT',
        `${what} at 0x${offset.toString(16)} (${length} bytes) runs past the end of the ${fileSize}-byte file`,
        { path, offset, structure: what },
      ),
    );
  }
}

/**
 * Reads the snapshot table incrementally, never more than QEMU's 64 MiB limit.
 * With `zerosPastEnd` (read-only opens) the part of the table past the end of
 * the file reads as zeros, as QEMU reads it when it opens the image (it opens,
 * lists and converts such an image); a writer refuses it instead, rather than
 * write back a table that was only half there.
 */
async function readSnapshotTable(
  file: BlockDevice,
  offset: number,
  count: number,
  geometry: Qcow2Geometry,
  options: { zerosPastEnd: boolean },
): Promise<Snapshot[]> {
  const where = { path: file.name, offset, structure: 'snapshot table' };
  if (!geometry.isClusterAligned(offset) || offset === 0) {
    throw new Qcow2Error(
      'CORRUPT',
      `snapshot table offset 0x${offset.toString(16)} is not cluster aligned`,
      where,
    );
  }
  if (offset >= file.size && !options.zerosPastEnd) {
    throw new Qcow2Error('CORRUPT', 'snapshot table lies beyond the end of the file', where);
  }
  const available = options.zerosPastEnd
    ? QCOW_MAX_SNAPSHOTS_SIZE
    : Math.min(file.size - offset, QCOW_MAX_SNAPSHOTS_SIZE);
  // Each entry is at least 40 bytes; read what the count could need, capped by the file and QEMU's limit.
  let length = Math.min(available, Math.max(4096, count * 128));
  for (;;) {
    const table = Buffer.alloc(length);
    const inFile = Math.max(0, Math.min(length, file.size - offset));
    if (inFile > 0) await file.read(offset, table.subarray(0, inFile));
    try {
      return parseSnapshotTable(table, count, offset, file.name);
    } catch (error) {
      const runsPast = error instanceof Qcow2Error && /runs past|ends inside/.test(error.message);
      if (!runsPast || length >= available) {
        if (runsPast && available === QCOW_MAX_SNAPSHOTS_SIZE) {
          throw new Qcow2Error('TOO_LARGE', "snapshot table exceeds QEMU's 64 MiB limit", where);
        }
        throw error;
      }
      length = Math.min(available, length * 4);
    }
  }
}
