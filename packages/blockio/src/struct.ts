import { BlockIoError } from './errors.js';

/**
 * Declarative on-disk structures: a field table (name, offset, type) is the
 * documentation and the codec at once. One generic `decode` and `encode` serve
 * every format; reserved ranges are kept as raw bytes so a rewrite preserves them.
 */

export interface FieldType<T> {
  readonly kind: string;
  readonly size: number;
  read(view: DataView, offset: number): T;
  write(view: DataView, offset: number, value: T): void;
}

const integer = (
  kind: string,
  size: number,
  read: (view: DataView, offset: number) => number,
  write: (view: DataView, offset: number, value: number) => void,
  max: number,
  min = 0,
): FieldType<number> => ({
  kind,
  size,
  read,
  write(view, offset, value) {
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new BlockIoError('OUT_OF_RANGE', `${value} does not fit in a ${kind} field`);
    }
    write(view, offset, value);
  },
});

const U64_MAX = (1n << 64n) - 1n;
const bigInteger = (kind: string, littleEndian: boolean): FieldType<bigint> => ({
  kind,
  size: 8,
  read: (view, offset) => view.getBigUint64(offset, littleEndian),
  write(view, offset, value) {
    if (value < 0n || value > U64_MAX) {
      throw new BlockIoError('OUT_OF_RANGE', `${value} does not fit in a ${kind} field`);
    }
    view.setBigUint64(offset, value, littleEndian);
  },
});

export const u8 = integer(
  'u8',
  1,
  (v, o) => v.getUint8(o),
  (v, o, x) => v.setUint8(o, x),
  0xff,
);
export const u16le = integer(
  'u16le',
  2,
  (v, o) => v.getUint16(o, true),
  (v, o, x) => v.setUint16(o, x, true),
  0xffff,
);
export const u16be = integer(
  'u16be',
  2,
  (v, o) => v.getUint16(o, false),
  (v, o, x) => v.setUint16(o, x, false),
  0xffff,
);
export const u32le = integer(
  'u32le',
  4,
  (v, o) => v.getUint32(o, true),
  (v, o, x) => v.setUint32(o, x, true),
  0xffffffff,
);
export const u32be = integer(
  'u32be',
  4,
  (v, o) => v.getUint32(o, false),
  (v, o, x) => v.setUint32(o, x, false),
  0xffffffff,
);
export const i32le = integer(
  'i32le',
  4,
  (v, o) => v.getInt32(o, true),
  (v, o, x) => v.setInt32(o, x, true),
  0x7fffffff,
  -0x80000000,
);
export const i32be = integer(
  'i32be',
  4,
  (v, o) => v.getInt32(o, false),
  (v, o, x) => v.setInt32(o, x, false),
  0x7fffffff,
  -0x80000000,
);
export const u64le = bigInteger('u64le', true);
export const u64be = bigInteger('u64be', false);

/** A fixed-length byte array, copied out on decode. */
export function bytes(size: number): FieldType<Uint8Array> {
  return {
    kind: `bytes[${size}]`,
    size,
    read: (view, offset) =>
      new Uint8Array(view.buffer.slice(view.byteOffset + offset, view.byteOffset + offset + size)),
    write(view, offset, value) {
      if (value.byteLength !== size) {
        throw new BlockIoError('OUT_OF_RANGE', `expected ${size} bytes, got ${value.byteLength}`);
      }
      new Uint8Array(view.buffer, view.byteOffset + offset, size).set(value);
    },
  };
}

/** Bytes the format reserves; decoded and re-encoded unchanged so rewrites preserve them. */
export function reserved(size: number): FieldType<Uint8Array> {
  return { ...bytes(size), kind: `reserved[${size}]` };
}

/** A fixed-size, NUL-padded string (NULs trimmed on decode, added on encode). */
export function fixedString(
  size: number,
  encoding: 'latin1' | 'utf8' = 'latin1',
): FieldType<string> {
  return {
    kind: `string[${size}]`,
    size,
    read(view, offset) {
      const raw = Buffer.from(view.buffer, view.byteOffset + offset, size);
      const nul = raw.indexOf(0);
      return raw.toString(encoding, 0, nul === -1 ? size : nul);
    },
    write(view, offset, value) {
      // Refuse what would not decode back to the same string: NULs end the field,
      // and latin1 cannot hold characters above U+00FF.
      if (value.includes('\0') || (encoding === 'latin1' && /[\u0100-\u{10ffff}]/u.test(value))) {
        throw new BlockIoError(
          'OUT_OF_RANGE',
          `"${value}" cannot be stored in a NUL-padded ${encoding} field`,
        );
      }
      const encoded = Buffer.from(value, encoding);
      if (encoded.byteLength > size) {
        throw new BlockIoError('OUT_OF_RANGE', `"${value}" is longer than ${size} bytes`);
      }
      const target = new Uint8Array(view.buffer, view.byteOffset + offset, size);
      target.fill(0);
      target.set(encoded);
    },
  };
}

export interface FieldSpec<Name extends string = string, T = unknown> {
  readonly name: Name;
  readonly offset: number;
  readonly type: FieldType<T>;
  /** One line of documentation (spec section, meaning). */
  readonly doc?: string;
}

/** The decoded value of a field table: one property per field. */
export type StructValue<Fields extends readonly FieldSpec[]> = {
  -readonly [F in Fields[number] as F['name']]: F['type'] extends FieldType<infer T> ? T : never;
};

export interface StructCodec<Fields extends readonly FieldSpec[]> {
  readonly name: string;
  readonly size: number;
  readonly fields: Fields;
  /** Decodes from `source` at `offset`. Throws SHORT_READ naming the structure if too short. */
  decode(source: Uint8Array, offset?: number): StructValue<Fields>;
  /** Encodes into a new buffer of `size` bytes, or into `target` at `offset`. */
  encode(value: StructValue<Fields>, target?: Uint8Array, offset?: number): Uint8Array;
  /** Byte offset of a field within the structure. */
  offsetOf(name: Fields[number]['name']): number;
}

/**
 * Defines a structure from its field table. Fields may leave gaps (zero on encode)
 * and must fit within `size`.
 */
export function defineStruct<const Fields extends readonly FieldSpec[]>(
  name: string,
  size: number,
  fields: Fields,
): StructCodec<Fields> {
  const offsets = new Map<string, number>();
  for (const field of fields) {
    if (field.offset < 0 || field.offset + field.type.size > size) {
      throw new Error(
        `${name}.${field.name} (${field.offset}+${field.type.size}) lies outside ${size} bytes`,
      );
    }
    if (offsets.has(field.name)) throw new Error(`${name}.${field.name} is defined twice`);
    offsets.set(field.name, field.offset);
  }
  return {
    name,
    size,
    fields,
    decode(source, offset = 0) {
      if (offset < 0 || offset + size > source.byteLength) {
        throw new BlockIoError(
          'SHORT_READ',
          `${name} needs ${size} bytes at ${offset} but only ${Math.max(0, source.byteLength - offset)} are there`,
          { structure: name, offset },
        );
      }
      const view = new DataView(source.buffer, source.byteOffset + offset, size);
      const value: Record<string, unknown> = {};
      for (const field of fields) value[field.name] = field.type.read(view, field.offset);
      return value as StructValue<Fields>;
    },
    encode(value, target, offset = 0) {
      const output = target ?? new Uint8Array(size);
      if (offset < 0 || offset + size > output.byteLength) {
        throw new BlockIoError('OUT_OF_RANGE', `${name} does not fit at ${offset}`, {
          structure: name,
        });
      }
      if (!target) output.fill(0);
      const view = new DataView(output.buffer, output.byteOffset + offset, size);
      const record = value as Record<string, unknown>;
      for (const field of fields) {
        try {
          (field.type as FieldType<unknown>).write(view, field.offset, record[field.name]);
        } catch (error) {
          throw new BlockIoError(
            'OUT_OF_RANGE',
            `${name}.${field.name}: ${(error as Error).message}`,
            {
              structure: name,
              cause: error,
            },
          );
        }
      }
      return output;
    },
    offsetOf(fieldName) {
      const fieldOffset = offsets.get(fieldName);
      if (fieldOffset === undefined) throw new Error(`${name} has no field ${fieldName}`);
      return fieldOffset;
    },
  };
}
