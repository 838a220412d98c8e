import { defineStruct, reserved, type StructValue, u8, u32be, u64be } from '@x/blockio';

/**
 * The QCOW2 header (qcow2.rst "Header"): version 2 fields, then the version 3
 * additions. All integers are big-endian. A field at an offset at or beyond
 * header_length is absent and reads as zero.
 */
export const qcow2HeaderV2 = defineStruct('qcow2 header', 72, [
  { name: 'magic', offset: 0, type: u32be, doc: 'QFI\\xfb' },
  { name: 'version', offset: 4, type: u32be, doc: '2 or 3' },
  { name: 'backingFileOffset', offset: 8, type: u64be, doc: 'backing_file_offset; 0 = none' },
  { name: 'backingFileSize', offset: 16, type: u32be, doc: 'backing_file_size; no NUL' },
  { name: 'clusterBits', offset: 20, type: u32be, doc: 'cluster_bits' },
  { name: 'size', offset: 24, type: u64be, doc: 'virtual disk size in bytes' },
  { name: 'cryptMethod', offset: 32, type: u32be, doc: 'crypt_method: 0 none, 1 AES, 2 LUKS' },
  { name: 'l1Size', offset: 36, type: u32be, doc: 'l1_size: entries in the active L1 table' },
  { name: 'l1TableOffset', offset: 40, type: u64be, doc: 'l1_table_offset' },
  { name: 'refcountTableOffset', offset: 48, type: u64be, doc: 'refcount_table_offset' },
  { name: 'refcountTableClusters', offset: 56, type: u32be, doc: 'refcount_table_clusters' },
  { name: 'nbSnapshots', offset: 60, type: u32be, doc: 'nb_snapshots' },
  { name: 'snapshotsOffset', offset: 64, type: u64be, doc: 'snapshots_offset' },
] as const);

export const qcow2HeaderV3Additions = defineStruct('qcow2 v3 header fields', 40, [
  { name: 'incompatibleFeatures', offset: 0, type: u64be, doc: 'incompatible_features (byte 72)' },
  { name: 'compatibleFeatures', offset: 8, type: u64be, doc: 'compatible_features (byte 80)' },
  { name: 'autoclearFeatures', offset: 16, type: u64be, doc: 'autoclear_features (byte 88)' },
  { name: 'refcountOrder', offset: 24, type: u32be, doc: 'refcount_order (byte 96)' },
  { name: 'headerLength', offset: 28, type: u32be, doc: 'header_length (byte 100)' },
  { name: 'compressionType', offset: 32, type: u8, doc: 'compression_type (byte 104), optional' },
  { name: 'padding', offset: 33, type: reserved(7), doc: 'padding to a multiple of 8' },
] as const);

/** Byte offset of the v3 additions inside the header. */
export const QCOW2_V3_FIELDS_OFFSET = 72;

export type Qcow2HeaderV2Fields = StructValue<typeof qcow2HeaderV2.fields>;

/** Every header field, v3 fields defaulted for version 2 images. */
export interface Qcow2Header extends Qcow2HeaderV2Fields {
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
  /** Header bytes beyond the fields we know (header_length > 112), kept for rewrites. */
  unknownHeaderBytes: Uint8Array;
}

/** One row per header field with its byte offset: for `dump --header-offsets`. */
export function headerFieldOffsets(
  version: number,
): Array<{ name: string; offset: number; size: number; doc: string }> {
  const rows: Array<{ name: string; offset: number; size: number; doc: string }> =
    qcow2HeaderV2.fields.map((field) => ({
      name: field.name,
      offset: field.offset,
      size: field.type.size,
      doc: field.doc ?? '',
    }));
  if (version >= 3) {
    for (const field of qcow2HeaderV3Additions.fields) {
      rows.push({
        name: field.name,
        offset: QCOW2_V3_FIELDS_OFFSET + field.offset,
        size: field.type.size,
        doc: field.doc ?? '',
      });
    }
  }
  return rows;
}

/**
 * Decodes the header from the first bytes of the image. For version 2 the v3
 * fields take their implied values (refcount_order 4, header_length 72).
 * Validation is `validateHeader`'s job; this only decodes.
 */
export function decodeHeader(bytes: Uint8Array): Qcow2Header {
  const base = qcow2HeaderV2.decode(bytes, 0);
  if (base.version < 3) {
    return {
      ...base,
      incompatibleFeatures: 0n,
      compatibleFeatures: 0n,
      autoclearFeatures: 0n,
      refcountOrder: 4,
      headerLength: qcow2HeaderV2.size,
      compressionType: 0,
      unknownHeaderBytes: new Uint8Array(0),
    };
  }
  // Zero-extend so a short v3 header (header_length 104) decodes its absent fields as 0.
  const v3 = new Uint8Array(qcow2HeaderV3Additions.size);
  v3.set(bytes.subarray(QCOW2_V3_FIELDS_OFFSET, QCOW2_V3_FIELDS_OFFSET + v3.byteLength));
  const additions = qcow2HeaderV3Additions.decode(v3, 0);
  const headerLength = additions.headerLength;
  const compressionType = headerLength > 104 ? additions.compressionType : 0;
  const knownEnd = QCOW2_V3_FIELDS_OFFSET + qcow2HeaderV3Additions.size;
  const unknownHeaderBytes =
    headerLength > knownEnd && headerLength <= bytes.byteLength
      ? bytes.slice(knownEnd, headerLength)
      : new Uint8Array(0);
  return {
    ...base,
    incompatibleFeatures: additions.incompatibleFeatures,
    compatibleFeatures: additions.compatibleFeatures,
    autoclearFeatures: additions.autoclearFeatures,
    refcountOrder: additions.refcountOrder,
    headerLength,
    compressionType,
    unknownHeaderBytes,
  };
}

/**
 * Encodes the header fields (not the extensions) into `header.headerLength`
 * bytes: 72 for version 2, the recorded length for version 3.
 */
export function encodeHeader(header: Qcow2Header): Uint8Array {
  const length = header.version < 3 ? qcow2HeaderV2.size : header.headerLength;
  const bytes = new Uint8Array(Math.max(length, qcow2HeaderV2.size));
  qcow2HeaderV2.encode(header, bytes, 0);
  if (header.version >= 3) {
    const additions = new Uint8Array(qcow2HeaderV3Additions.size);
    qcow2HeaderV3Additions.encode(
      {
        incompatibleFeatures: header.incompatibleFeatures,
        compatibleFeatures: header.compatibleFeatures,
        autoclearFeatures: header.autoclearFeatures,
        refcountOrder: header.refcountOrder,
        headerLength: header.headerLength,
        compressionType: header.compressionType,
        padding: new Uint8Array(7),
      },
      additions,
      0,
    );
    const knownEnd = QCOW2_V3_FIELDS_OFFSET + qcow2HeaderV3Additions.size;
    bytes.set(
      additions.subarray(0, Math.min(additions.byteLength, length - QCOW2_V3_FIELDS_OFFSET)),
      QCOW2_V3_FIELDS_OFFSET,
    );
    if (header.unknownHeaderBytes.byteLength > 0 && length > knownEnd) {
      bytes.set(header.unknownHeaderBytes.subarray(0, length - knownEnd), knownEnd);
    }
  }
  return bytes;
}
