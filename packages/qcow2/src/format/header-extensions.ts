import { defineStruct, fixedString, type StructValue, u8, u32be, u64be } from '@x/blockio';
import { Qcow2Error } from '../errors.js';
import {
  QCOW2_EXT_MAGIC_BACKING_FORMAT,
  QCOW2_EXT_MAGIC_BITMAPS,
  QCOW2_EXT_MAGIC_CRYPTO_HEADER,
  QCOW2_EXT_MAGIC_DATA_FILE,
  QCOW2_EXT_MAGIC_END,
  QCOW2_EXT_MAGIC_FEATURE_TABLE,
} from './constants.js';

/** Header extension framing (qcow2.rst "Header extensions"): u32 type, u32 length, data, pad to 8. */
export const headerExtensionFrame = defineStruct('qcow2 header extension', 8, [
  { name: 'type', offset: 0, type: u32be },
  { name: 'length', offset: 4, type: u32be },
] as const);

/** One feature name table entry (48 bytes). */
export const featureNameEntry = defineStruct('qcow2 feature name table entry', 48, [
  { name: 'type', offset: 0, type: u8, doc: '0 incompatible, 1 compatible, 2 autoclear' },
  { name: 'bit', offset: 1, type: u8 },
  { name: 'name', offset: 2, type: fixedString(46, 'utf8') },
] as const);

/** Bitmaps extension body (qcow2.rst "Bitmaps extension"). */
export const bitmapsExtension = defineStruct('qcow2 bitmaps extension', 24, [
  { name: 'nbBitmaps', offset: 0, type: u32be },
  { name: 'reserved', offset: 4, type: u32be },
  { name: 'bitmapDirectorySize', offset: 8, type: u64be },
  { name: 'bitmapDirectoryOffset', offset: 16, type: u64be },
] as const);

/** Full disk encryption header pointer (qcow2.rst "Full disk encryption header pointer"). */
export const cryptoHeaderExtension = defineStruct('qcow2 crypto header extension', 16, [
  { name: 'offset', offset: 0, type: u64be },
  { name: 'length', offset: 8, type: u64be },
] as const);

export type FeatureType = 'incompatible' | 'compatible' | 'autoclear';
export interface FeatureName {
  type: FeatureType;
  bit: number;
  name: string;
}

export type BitmapsExtension = StructValue<typeof bitmapsExtension.fields>;
export type CryptoHeaderExtension = StructValue<typeof cryptoHeaderExtension.fields>;

export interface HeaderExtension {
  type: number;
  /** Byte offset of the extension's frame in the image. */
  offset: number;
  data: Uint8Array;
}

/** The decoded extensions; unknown ones are kept raw so a header rewrite preserves them. */
export interface HeaderExtensions {
  all: HeaderExtension[];
  backingFormat?: string | undefined;
  featureNames: FeatureName[];
  bitmaps?: BitmapsExtension | undefined;
  cryptoHeader?: CryptoHeaderExtension | undefined;
  dataFile?: string | undefined;
  unknown: HeaderExtension[];
  /** Byte offset just past the end-of-list marker. */
  end: number;
}

const FEATURE_TYPES: FeatureType[] = ['incompatible', 'compatible', 'autoclear'];

/**
 * Parses the extension list that starts at `start` inside cluster 0 (`bytes` is
 * that cluster). Every length is checked against the cluster, each known type
 * may occur once, and the list must end with type 0 before the cluster does.
 */
export function parseHeaderExtensions(
  bytes: Uint8Array,
  start: number,
  path?: string,
): HeaderExtensions {
  const result: HeaderExtensions = { all: [], featureNames: [], unknown: [], end: start };
  const seen = new Set<number>();
  let offset = start;
  for (;;) {
    if (offset + 8 > bytes.byteLength) {
      throw new Qcow2Error(
        'CORRUPT',
        'header extension list runs past the end of the first cluster',
        {
          path,
          offset,
          structure: 'header extensions',
        },
      );
    }
    const frame = headerExtensionFrame.decode(bytes, offset);
    if (frame.type === QCOW2_EXT_MAGIC_END) {
      result.end = offset + 8;
      return result;
    }
    const dataStart = offset + 8;
    if (frame.length > bytes.byteLength - dataStart) {
      throw new Qcow2Error(
        'CORRUPT',
        `header extension 0x${frame.type.toString(16)} claims ${frame.length} bytes, more than the first cluster holds`,
        { path, offset, structure: 'header extensions' },
      );
    }
    if (seen.has(frame.type)) {
      throw new Qcow2Error(
        'CORRUPT',
        `header extension 0x${frame.type.toString(16)} appears twice`,
        {
          path,
          offset,
          structure: 'header extensions',
        },
      );
    }
    seen.add(frame.type);
    const data = bytes.slice(dataStart, dataStart + frame.length);
    const extension: HeaderExtension = { type: frame.type, offset, data };
    result.all.push(extension);
    decodeKnownExtension(result, extension, path);
    offset = dataStart + Math.ceil(frame.length / 8) * 8;
  }
}

function decodeKnownExtension(
  result: HeaderExtensions,
  extension: HeaderExtension,
  path?: string,
): void {
  const { data, offset } = extension;
  const where = { path, offset };
  switch (extension.type) {
    case QCOW2_EXT_MAGIC_BACKING_FORMAT:
      result.backingFormat = Buffer.from(data).toString('utf8');
      return;
    case QCOW2_EXT_MAGIC_DATA_FILE:
      result.dataFile = Buffer.from(data).toString('utf8');
      return;
    case QCOW2_EXT_MAGIC_FEATURE_TABLE:
      for (let at = 0; at + featureNameEntry.size <= data.byteLength; at += featureNameEntry.size) {
        const entry = featureNameEntry.decode(data, at);
        const type = FEATURE_TYPES[entry.type];
        // Unknown table types are allowed by the spec; they name nothing we use.
        if (type) result.featureNames.push({ type, bit: entry.bit, name: entry.name });
      }
      return;
    case QCOW2_EXT_MAGIC_BITMAPS:
      if (data.byteLength < bitmapsExtension.size) {
        throw new Qcow2Error(
          'CORRUPT',
          `bitmaps extension is ${data.byteLength} bytes, expected 24`,
          {
            ...where,
            structure: 'bitmaps extension',
          },
        );
      }
      result.bitmaps = bitmapsExtension.decode(data, 0);
      return;
    case QCOW2_EXT_MAGIC_CRYPTO_HEADER:
      if (data.byteLength < cryptoHeaderExtension.size) {
        throw new Qcow2Error(
          'CORRUPT',
          `crypto header extension is ${data.byteLength} bytes, expected 16`,
          {
            ...where,
            structure: 'crypto header extension',
          },
        );
      }
      result.cryptoHeader = cryptoHeaderExtension.decode(data, 0);
      return;
    default:
      result.unknown.push(extension);
  }
}

/** Encodes an extension list (each padded to 8 bytes) followed by the end marker. */
export function encodeHeaderExtensions(
  extensions: Array<{ type: number; data: Uint8Array }>,
): Uint8Array {
  const size = extensions.reduce((sum, ext) => sum + 8 + Math.ceil(ext.data.byteLength / 8) * 8, 8);
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const ext of extensions) {
    headerExtensionFrame.encode({ type: ext.type, length: ext.data.byteLength }, bytes, offset);
    bytes.set(ext.data, offset + 8);
    offset += 8 + Math.ceil(ext.data.byteLength / 8) * 8;
  }
  return bytes; // the trailing 8 zero bytes are the end marker
}

/** The feature name table QEMU 7.2 writes into every version 3 image. */
export const QEMU_FEATURE_NAMES: FeatureName[] = [
  { type: 'incompatible', bit: 0, name: 'dirty bit' },
  { type: 'incompatible', bit: 1, name: 'corrupt bit' },
  { type: 'incompatible', bit: 2, name: 'external data file' },
  { type: 'incompatible', bit: 3, name: 'compression type' },
  { type: 'incompatible', bit: 4, name: 'extended L2 entries' },
  { type: 'compatible', bit: 0, name: 'lazy refcounts' },
  { type: 'autoclear', bit: 0, name: 'bitmaps' },
  { type: 'autoclear', bit: 1, name: 'raw external data' },
];

export function encodeFeatureNameTable(names: FeatureName[]): Uint8Array {
  const bytes = new Uint8Array(names.length * featureNameEntry.size);
  names.forEach((entry, index) => {
    featureNameEntry.encode(
      { type: FEATURE_TYPES.indexOf(entry.type), bit: entry.bit, name: entry.name },
      bytes,
      index * featureNameEntry.size,
    );
  });
  return bytes;
}

/** Names the bits set in `bits` using the image's feature table, then QEMU's names. */
export function nameFeatureBits(bits: bigint, type: FeatureType, table: FeatureName[]): string[] {
  const names: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if ((bits & (1n << BigInt(bit))) === 0n) continue;
    const named =
      table.find((entry) => entry.type === type && entry.bit === bit) ??
      QEMU_FEATURE_NAMES.find((entry) => entry.type === type && entry.bit === bit);
    names.push(named ? named.name : `unknown ${type} bit ${bit}`);
  }
  return names;
}
