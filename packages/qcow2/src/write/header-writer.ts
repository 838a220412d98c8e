import type { BlockDevice } from '@x/blockio';
import { Qcow2Error } from '../errors.js';
import {
  QCOW2_EXT_MAGIC_BACKING_FORMAT,
  QCOW2_EXT_MAGIC_BITMAPS,
  QCOW2_EXT_MAGIC_CRYPTO_HEADER,
  QCOW2_EXT_MAGIC_DATA_FILE,
  QCOW2_EXT_MAGIC_FEATURE_TABLE,
  QCOW2_V2_HEADER_LENGTH,
  QCOW2_V3_HEADER_LENGTH,
} from '../format/constants.js';
import { encodeHeader, type Qcow2Header } from '../format/header.js';
import {
  encodeFeatureNameTable,
  encodeHeaderExtensions,
  type HeaderExtensions,
  QEMU_FEATURE_NAMES,
} from '../format/header-extensions.js';

/** Everything that goes into cluster 0, as the writer keeps it up to date. */
export interface HeaderState {
  header: Qcow2Header;
  backingFile: string | undefined;
  backingFormat: string | undefined;
  /** External data file name (written only while the data file bit is set). */
  dataFile: string | undefined;
  /** Raw bodies of extensions we preserve without interpreting. */
  cryptoHeader: Uint8Array | undefined;
  bitmaps: Uint8Array | undefined;
  unknownExtensions: Array<{ type: number; data: Uint8Array }>;
}

/** Header byte offsets of the fields QEMU updates in place (QCowHeader). */
export const HEADER_SIZE_OFFSET = 24;
export const HEADER_L1_SIZE_OFFSET = 36;
export const HEADER_REFCOUNT_TABLE_OFFSET = 48;
export const HEADER_NB_SNAPSHOTS_OFFSET = 60;
export const HEADER_INCOMPATIBLE_OFFSET = 72;
export const HEADER_AUTOCLEAR_OFFSET = 88;

export function headerStateFrom(
  header: Qcow2Header,
  extensions: HeaderExtensions,
  backingFile: string | undefined,
): HeaderState {
  const raw = (type: number) => extensions.all.find((extension) => extension.type === type)?.data;
  return {
    header: { ...header, unknownHeaderBytes: header.unknownHeaderBytes.slice() },
    backingFile,
    backingFormat: extensions.backingFormat,
    dataFile: extensions.dataFile,
    cryptoHeader: raw(QCOW2_EXT_MAGIC_CRYPTO_HEADER),
    bitmaps: raw(QCOW2_EXT_MAGIC_BITMAPS),
    unknownExtensions: extensions.unknown.map(({ type, data }) => ({ type, data })),
  };
}

/**
 * Builds cluster 0 the way QEMU's qcow2_update_header() does: the header
 * (v2: 72 bytes; v3: 112 plus preserved unknown header bytes), then the
 * extensions in QEMU's order — backing format, data file, crypto header, the
 * feature name table (v3 with clusters over 4 KiB only), bitmaps, unknown ones
 * — the end marker, and the backing file name right after it.
 */
export function encodeHeaderCluster(
  state: HeaderState,
  clusterSize: number,
  path?: string,
): Buffer {
  const header: Qcow2Header = { ...state.header };
  if (header.version >= 3) {
    header.headerLength = QCOW2_V3_HEADER_LENGTH + header.unknownHeaderBytes.byteLength;
  }
  const cluster = Buffer.alloc(clusterSize);
  const fields = encodeHeader({ ...header, backingFileOffset: 0n, backingFileSize: 0 });
  const headerLength = header.version >= 3 ? header.headerLength : QCOW2_V2_HEADER_LENGTH;
  const extensions: Array<{ type: number; data: Uint8Array }> = [];
  const text = (value: string) => Buffer.from(value, 'utf8');
  if (state.backingFormat !== undefined) {
    extensions.push({ type: QCOW2_EXT_MAGIC_BACKING_FORMAT, data: text(state.backingFormat) });
  }
  if (state.dataFile !== undefined) {
    extensions.push({ type: QCOW2_EXT_MAGIC_DATA_FILE, data: text(state.dataFile) });
  }
  if (state.cryptoHeader !== undefined) {
    extensions.push({ type: QCOW2_EXT_MAGIC_CRYPTO_HEADER, data: state.cryptoHeader });
  }
  if (header.version >= 3 && clusterSize > 4096) {
    extensions.push({
      type: QCOW2_EXT_MAGIC_FEATURE_TABLE,
      data: encodeFeatureNameTable(QEMU_FEATURE_NAMES),
    });
  }
  if (state.bitmaps !== undefined) {
    extensions.push({ type: QCOW2_EXT_MAGIC_BITMAPS, data: state.bitmaps });
  }
  extensions.push(...state.unknownExtensions);
  const encodedExtensions = encodeHeaderExtensions(extensions);
  const backing = state.backingFile === undefined ? undefined : text(state.backingFile);
  const backingOffset = headerLength + encodedExtensions.byteLength;
  if (backingOffset + (backing?.byteLength ?? 0) > clusterSize) {
    throw new Qcow2Error(
      'TOO_LARGE',
      `the header, its extensions and the backing file name need ${backingOffset + (backing?.byteLength ?? 0)} bytes, more than one ${clusterSize}-byte cluster`,
      { path, offset: 0, structure: 'qcow2 header' },
    );
  }
  cluster.set(fields.subarray(0, headerLength), 0);
  cluster.set(encodedExtensions, headerLength);
  if (backing !== undefined) {
    cluster.set(backing, backingOffset);
    cluster.writeBigUInt64BE(BigInt(backingOffset), 8);
    cluster.writeUInt32BE(backing.byteLength, 16);
  }
  state.header.headerLength = header.headerLength;
  state.header.backingFileOffset = backing === undefined ? 0n : BigInt(backingOffset);
  state.header.backingFileSize = backing?.byteLength ?? 0;
  return cluster;
}

/** Writes the whole of cluster 0 (QEMU's qcow2_update_header). */
export async function rewriteHeader(
  file: BlockDevice,
  state: HeaderState,
  clusterSize: number,
): Promise<void> {
  await file.write(0, encodeHeaderCluster(state, clusterSize, file.name));
}

/** Writes a big-endian unsigned field of `bytes` bytes at `offset` in the header. */
export async function writeHeaderField(
  file: BlockDevice,
  offset: number,
  bytes: 4 | 8,
  value: number | bigint,
): Promise<void> {
  const buffer = Buffer.alloc(bytes);
  if (bytes === 4) buffer.writeUInt32BE(Number(value));
  else buffer.writeBigUInt64BE(BigInt(value));
  await file.write(offset, buffer);
}
