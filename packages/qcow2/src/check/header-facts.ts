import type { BlockDevice } from '@x/blockio';
import { Qcow2Error } from '../errors.js';
import {
  MAX_CLUSTER_BITS,
  MIN_CLUSTER_BITS,
  MIN_EXTENDED_L2_CLUSTER_BITS,
  QCOW_CRYPT_LUKS,
  QCOW_CRYPT_NONE,
  QCOW_MAGIC,
  QCOW_MAX_L1_SIZE,
  QCOW_MAX_REFCOUNT_ORDER,
  QCOW_MAX_REFTABLE_SIZE,
  QCOW_MAX_SNAPSHOTS,
  QCOW2_COMPAT_LAZY_REFCOUNTS,
  QCOW2_COMPRESSION_TYPE_ZLIB,
  QCOW2_INCOMPAT_COMPRESSION,
  QCOW2_INCOMPAT_CORRUPT,
  QCOW2_INCOMPAT_DATA_FILE,
  QCOW2_INCOMPAT_DIRTY,
  QCOW2_INCOMPAT_EXTL2,
  QCOW2_INCOMPAT_MASK,
  QCOW2_MAX_BACKING_FILE_SIZE,
  QCOW2_V2_HEADER_LENGTH,
  QCOW2_V3_MIN_HEADER_LENGTH,
} from '../format/constants.js';
import { Qcow2Geometry } from '../format/geometry.js';
import { decodeHeader, type Qcow2Header } from '../format/header.js';
import {
  type HeaderExtensions,
  nameFeatureBits,
  parseHeaderExtensions,
} from '../format/header-extensions.js';
import type { FindingCollector } from './report.js';

/** A table's placement as the header states it, and whether check may read it. */
export interface TablePlacement {
  offset: number;
  /** Bytes the header says the table has. */
  length: number;
  /** Whether the table is where it can be read (aligned, inside the file). */
  readable: boolean;
}

/**
 * The header of a possibly damaged image, read without giving up: everything
 * wrong is reported as a finding, and only what makes a check meaningless
 * (not qcow2, unknown version, cluster or refcount sizes we cannot compute
 * with) throws.
 */
export interface HeaderFacts {
  path: string;
  fileSize: number;
  header: Qcow2Header;
  geometry: Qcow2Geometry;
  version: number;
  clusterSize: number;
  /** Clusters of the file (rounded up). */
  fileClusters: number;
  virtualSize: number;
  extensions: HeaderExtensions;
  /** Active L1 table; `entries` is how many entries check walks (clamped to what is readable). */
  l1: TablePlacement & { entries: number };
  refcountTable: TablePlacement;
  snapshotTable: { offset: number; count: number };
  extendedL2: boolean;
  dataFile: boolean;
  encrypted: boolean;
  compressionType: 'zlib' | 'zstd' | 'unknown';
  corruptBit: boolean;
  dirtyBit: boolean;
  lazyRefcounts: boolean;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Reads the header for check, dump and repair. Throws Qcow2Error only when nothing can be checked. */
export async function readHeaderFacts(
  file: BlockDevice,
  findings: FindingCollector,
): Promise<HeaderFacts> {
  const path = file.name;
  const fileSize = file.size;
  const where = (offset: number) => ({ path, offset, structure: 'qcow2 header' });
  if (fileSize < QCOW2_V2_HEADER_LENGTH) {
    const magic = fileSize >= 4 ? (await file.read(0, 4)).readUInt32BE(0) : 0;
    throw new Qcow2Error(
      magic === QCOW_MAGIC ? 'CORRUPT' : 'NOT_QCOW2',
      magic === QCOW_MAGIC
        ? `file is only ${fileSize} bytes, shorter than a qcow2 header`
        : 'not a qcow2 image (file too short)',
      where(0),
    );
  }
  const first = await file.read(0, Math.min(fileSize, 4096));
  const magic = first.readUInt32BE(0);
  if (magic !== QCOW_MAGIC) {
    throw new Qcow2Error(
      'NOT_QCOW2',
      `not a qcow2 image (magic 0x${magic.toString(16).padStart(8, '0')}, expected 0x514649fb)`,
      where(0),
    );
  }
  const version = first.readUInt32BE(4);
  if (version !== 2 && version !== 3) {
    throw new Qcow2Error('UNSUPPORTED', `qcow2 version ${version} is not 2 or 3`, where(4));
  }
  const clusterBits = first.readUInt32BE(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw new Qcow2Error(
      'UNSUPPORTED',
      `cluster_bits is ${clusterBits}; only 9 (512 bytes) to 21 (2 MiB) can be checked`,
      where(20),
    );
  }
  const clusterSize = 2 ** clusterBits;
  const cluster0 = Buffer.alloc(clusterSize);
  await file.read(0, cluster0.subarray(0, Math.min(clusterSize, fileSize)));
  const header = decodeHeader(cluster0);
  if (header.refcountOrder > QCOW_MAX_REFCOUNT_ORDER) {
    throw new Qcow2Error(
      'UNSUPPORTED',
      `refcount_order ${header.refcountOrder} is above 6; refcounts cannot be checked`,
      where(96),
    );
  }

  const headerProblem = (offset: number, message: string) =>
    findings.add({ kind: 'header', message, structure: 'qcow2 header', entryOffset: offset });

  let extensionsStart = QCOW2_V2_HEADER_LENGTH;
  if (version === 3) {
    if (header.headerLength < QCOW2_V3_MIN_HEADER_LENGTH || header.headerLength > clusterSize) {
      headerProblem(
        100,
        `header_length is ${header.headerLength}; it must be at least 104 and fit in one cluster`,
      );
      extensionsStart = QCOW2_V3_MIN_HEADER_LENGTH;
    } else {
      extensionsStart = header.headerLength;
      if (header.headerLength % 8 !== 0) {
        headerProblem(100, `header_length ${header.headerLength} is not a multiple of 8`);
      }
    }
  }
  let extensions: HeaderExtensions;
  try {
    extensions = parseHeaderExtensions(cluster0, extensionsStart, path);
  } catch (error) {
    if (!(error instanceof Qcow2Error)) throw error;
    headerProblem(Number(error.offset ?? extensionsStart), error.message);
    extensions = { all: [], featureNames: [], unknown: [], end: extensionsStart };
  }

  const incompatible = header.incompatibleFeatures;
  const unknown = incompatible & ~QCOW2_INCOMPAT_MASK;
  if (unknown !== 0n) {
    headerProblem(
      72,
      `unknown incompatible feature bits are set (${nameFeatureBits(unknown, 'incompatible', extensions.featureNames).join(', ')}); checked as if they were clear`,
    );
  }
  const extendedL2 = (incompatible & QCOW2_INCOMPAT_EXTL2) !== 0n;
  if (extendedL2 && clusterBits < MIN_EXTENDED_L2_CLUSTER_BITS) {
    throw new Qcow2Error(
      'CORRUPT',
      `extended L2 entries need clusters of at least 16 KiB, not ${clusterSize} bytes`,
      where(72),
    );
  }
  const geometry = new Qcow2Geometry(clusterBits, header.refcountOrder, extendedL2);
  let compressionType: HeaderFacts['compressionType'] =
    header.compressionType === QCOW2_COMPRESSION_TYPE_ZLIB
      ? 'zlib'
      : header.compressionType === 1
        ? 'zstd'
        : 'unknown';
  if (compressionType === 'unknown') {
    headerProblem(104, `compression_type ${header.compressionType} is unknown (0 zlib, 1 zstd)`);
  }
  const compressionBit = (incompatible & QCOW2_INCOMPAT_COMPRESSION) !== 0n;
  if (compressionBit !== (header.compressionType !== QCOW2_COMPRESSION_TYPE_ZLIB)) {
    headerProblem(
      72,
      compressionBit
        ? 'the compression type feature bit is set but compression_type is zlib'
        : `compression_type is ${header.compressionType} but the compression type feature bit is clear`,
    );
    if (!compressionBit) compressionType = 'zlib';
  }

  checkOpenFields(header, clusterSize, headerProblem);

  const fileClusters = Math.ceil(fileSize / clusterSize);
  let virtualSize = 0;
  if (header.size > MAX_SAFE) headerProblem(24, `virtual size ${header.size} is absurd`);
  else virtualSize = Number(header.size);

  // Active L1 table.
  const l1Offset = clampOffset(header.l1TableOffset);
  const l1Length = header.l1Size * 8;
  const l1 = { offset: l1Offset, length: l1Length, readable: true, entries: header.l1Size };
  const l1Needed = virtualSize > 0 ? geometry.l1EntriesFor(virtualSize) : 0;
  if (header.l1Size < l1Needed) {
    findings.add({
      kind: 'l1-table',
      message: `active L1 table has ${header.l1Size} entries but a ${virtualSize}-byte disk needs ${l1Needed}`,
      structure: 'qcow2 header',
      entryOffset: 36,
    });
  }
  if (l1Length > QCOW_MAX_L1_SIZE) {
    findings.add({
      kind: 'l1-table',
      message: `active L1 table of ${header.l1Size} entries exceeds QEMU's 32 MiB limit; only the entries the disk size needs are checked`,
      structure: 'qcow2 header',
      entryOffset: 36,
    });
    l1.entries = Math.min(l1Needed, QCOW_MAX_L1_SIZE / 8);
  }
  checkPlacement(findings, 'l1-table', 'active L1 table', l1, 40, geometry, fileSize);
  if (!l1.readable) l1.entries = 0;
  else l1.entries = Math.min(l1.entries, Math.floor((fileSize - l1.offset) / 8));

  // Refcount table.
  const refcountTable = {
    offset: clampOffset(header.refcountTableOffset),
    length: header.refcountTableClusters * clusterSize,
    readable: true,
  };
  if (header.refcountTableClusters === 0) {
    findings.add({
      kind: 'refcount-table',
      message: 'refcount_table_clusters is 0: the image has no refcount table',
      structure: 'qcow2 header',
      entryOffset: 56,
    });
    refcountTable.readable = false;
  } else if (refcountTable.length > QCOW_MAX_REFTABLE_SIZE) {
    findings.add({
      kind: 'refcount-table',
      message: `refcount table of ${header.refcountTableClusters} clusters exceeds QEMU's 8 MiB limit`,
      structure: 'qcow2 header',
      entryOffset: 56,
    });
    refcountTable.readable = false;
  } else {
    checkPlacement(
      findings,
      'refcount-table',
      'refcount table',
      refcountTable,
      48,
      geometry,
      fileSize,
    );
  }

  let snapshotCount = header.nbSnapshots;
  if (snapshotCount > QCOW_MAX_SNAPSHOTS) {
    findings.add({
      kind: 'snapshot-table',
      message: `nb_snapshots is ${snapshotCount}, above QEMU's limit of ${QCOW_MAX_SNAPSHOTS}`,
      structure: 'qcow2 header',
      entryOffset: 60,
    });
    snapshotCount = 0;
  }

  const corruptBit = (incompatible & QCOW2_INCOMPAT_CORRUPT) !== 0n;
  const dirtyBit = (incompatible & QCOW2_INCOMPAT_DIRTY) !== 0n;
  if (corruptBit) {
    findings.add({
      kind: 'corrupt-bit',
      message: 'the header marks the image corrupt (incompatible feature bit 1)',
      structure: 'qcow2 header',
      entryOffset: 72,
    });
  }
  if (dirtyBit) {
    findings.add({
      kind: 'dirty-bit',
      message:
        'the header marks the image dirty (incompatible feature bit 0): refcounts may be stale until repaired',
      structure: 'qcow2 header',
      entryOffset: 72,
    });
  }

  return {
    path,
    fileSize,
    header,
    geometry,
    version,
    clusterSize,
    fileClusters,
    virtualSize,
    extensions,
    l1,
    refcountTable,
    snapshotTable: { offset: clampOffset(header.snapshotsOffset), count: snapshotCount },
    extendedL2,
    dataFile: (incompatible & QCOW2_INCOMPAT_DATA_FILE) !== 0n,
    encrypted: header.cryptMethod !== QCOW_CRYPT_NONE,
    compressionType,
    corruptBit,
    dirtyBit,
    lazyRefcounts: (header.compatibleFeatures & QCOW2_COMPAT_LAZY_REFCOUNTS) !== 0n,
  };
}

/**
 * Header fields qemu-img refuses to open an image on (and our reader refuses to
 * read it on), which the rest of the check does not look at: the backing file
 * name's placement and length, and the encryption method.
 */
function checkOpenFields(
  header: Qcow2Header,
  clusterSize: number,
  headerProblem: (offset: number, message: string) => void,
): void {
  if (header.backingFileOffset !== 0n) {
    const offset = header.backingFileOffset;
    if (offset > BigInt(clusterSize)) {
      headerProblem(
        8,
        `backing file name offset 0x${offset.toString(16)} lies outside the header cluster (qemu-img: "Invalid backing file offset")`,
      );
    } else if (header.backingFileSize > QCOW2_MAX_BACKING_FILE_SIZE) {
      headerProblem(
        16,
        `backing file name of ${header.backingFileSize} bytes is longer than 1023 (qemu-img: "Backing file name too long")`,
      );
    } else if (offset + BigInt(header.backingFileSize) > BigInt(clusterSize)) {
      headerProblem(
        16,
        `backing file name (${header.backingFileSize} bytes at 0x${offset.toString(16)}) runs past the header cluster (qemu-img: "Backing file name too long")`,
      );
    }
  }
  if (header.cryptMethod > QCOW_CRYPT_LUKS) {
    headerProblem(
      32,
      `crypt_method ${header.cryptMethod} is unknown (0 none, 1 AES, 2 LUKS; qemu-img: "Unsupported encryption method")`,
    );
  }
}

/** 64-bit offsets beyond 2^53 cannot be inside any file: map them to MAX_SAFE_INTEGER. */
export function clampOffset(value: bigint): number {
  return value > MAX_SAFE ? Number.MAX_SAFE_INTEGER : Number(value);
}

function checkPlacement(
  findings: FindingCollector,
  kind: 'l1-table' | 'refcount-table',
  what: string,
  table: TablePlacement,
  headerField: number,
  geometry: Qcow2Geometry,
  fileSize: number,
): void {
  if (table.length === 0) return;
  if (table.offset === 0 || !geometry.isClusterAligned(table.offset)) {
    findings.add({
      kind,
      message: `${what} offset 0x${table.offset.toString(16)} is not a non-zero multiple of the cluster size`,
      structure: 'qcow2 header',
      entryOffset: headerField,
      hostOffset: table.offset,
    });
    // QEMU reads an unaligned table where it says it is; so do we, if it is in the file.
    if (table.offset === 0) table.readable = false;
  }
  if (table.offset >= fileSize) {
    findings.add({
      kind,
      message: `${what} at 0x${table.offset.toString(16)} lies beyond the end of the ${fileSize}-byte file`,
      structure: 'qcow2 header',
      entryOffset: headerField,
      hostOffset: table.offset,
    });
    table.readable = false;
  } else if (table.offset + table.length > fileSize) {
    findings.add({
      kind,
      message: `${what} at 0x${table.offset.toString(16)} (${table.length} bytes) runs past the end of the ${fileSize}-byte file`,
      structure: what,
      hostOffset: table.offset,
    });
  }
}
