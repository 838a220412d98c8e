import { defineStruct, fixedString, type StructValue, u8, u32le, u64le } from '@x/blockio';
import { RbdRecoverError } from '../errors.js';

/** `struct rbd_obj_header_ondisk` (include/rbd_types.h): data of a format 1 `<name>.rbd` object. */
export const rbdV1HeaderStruct = defineStruct('rbd format 1 header', 112, [
  { name: 'text', offset: 0, type: fixedString(40), doc: 'RBD_HEADER_TEXT' },
  { name: 'block_name', offset: 40, type: fixedString(24), doc: 'object prefix' },
  { name: 'signature', offset: 64, type: fixedString(4), doc: 'RBD_HEADER_SIGNATURE' },
  { name: 'version', offset: 68, type: fixedString(8), doc: 'RBD_HEADER_VERSION' },
  { name: 'order', offset: 76, type: u8 },
  { name: 'crypt_type', offset: 77, type: u8 },
  { name: 'comp_type', offset: 78, type: u8 },
  { name: 'unused', offset: 79, type: u8 },
  { name: 'image_size', offset: 80, type: u64le },
  { name: 'snap_seq', offset: 88, type: u64le },
  { name: 'snap_count', offset: 96, type: u32le },
  { name: 'reserved', offset: 100, type: u32le },
  { name: 'snap_names_len', offset: 104, type: u64le },
] as const);

export type RbdV1Header = StructValue<typeof rbdV1HeaderStruct.fields>;

/** rbd_types.h */
export const RBD_HEADER_TEXT = '<<< Rados Block Device Image >>>\n';
export const RBD_HEADER_SIGNATURE = 'RBD';
export const RBD_SUFFIX = '.rbd';

export interface V1Snapshot {
  readonly id: bigint;
  readonly size: number;
  readonly name: string;
}

export interface DecodedV1Header {
  readonly prefix: string;
  readonly order: number;
  readonly size: number;
  readonly snapSeq: bigint;
  readonly snapshots: readonly V1Snapshot[];
}

export function decodeRbdV1Header(data: Uint8Array, path?: string): DecodedV1Header {
  const fail = (message: string, offset?: number) =>
    new RbdRecoverError('BAD_HEADER', message, {
      path,
      offset,
      structure: 'rbd format 1 header',
    });
  if (data.byteLength < rbdV1HeaderStruct.size) {
    throw fail(`${data.byteLength} bytes, a header needs at least ${rbdV1HeaderStruct.size}`);
  }
  const header = rbdV1HeaderStruct.decode(data);
  if (header.text !== RBD_HEADER_TEXT) throw fail('no "<<< Rados Block Device Image >>>" text', 0);
  if (header.signature !== RBD_HEADER_SIGNATURE) throw fail('no RBD signature', 64);
  if (header.order < 12 || header.order > 25) throw fail(`order ${header.order} out of range`, 76);
  const size = toSafe(header.image_size, () => fail('image size beyond 2^53 - 1', 80));
  const namesLength = toSafe(header.snap_names_len, () => fail('snap_names_len too big', 104));
  const arrayEnd = 112 + header.snap_count * 16;
  if (arrayEnd + namesLength > data.byteLength) {
    throw fail(
      `${header.snap_count} snapshots and ${namesLength} bytes of names run past the ${data.byteLength}-byte object`,
      96,
    );
  }
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const snapshots: V1Snapshot[] = [];
  let nameAt = arrayEnd;
  for (let i = 0; i < header.snap_count; i++) {
    const end = bytes.indexOf(0, nameAt);
    if (end < 0 || end >= arrayEnd + namesLength)
      throw fail(`snapshot ${i} name not terminated`, nameAt);
    snapshots.push({
      id: bytes.readBigUInt64LE(112 + i * 16),
      size: toSafe(bytes.readBigUInt64LE(120 + i * 16), () =>
        fail(`snapshot ${i} size beyond 2^53 - 1`, 120 + i * 16),
      ),
      name: bytes.subarray(nameAt, end).toString('utf8'),
    });
    nameAt = end + 1;
  }
  return {
    prefix: header.block_name,
    order: header.order,
    size,
    snapSeq: header.snap_seq,
    snapshots,
  };
}

function toSafe(value: bigint, fail: () => Error): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw fail();
  return Number(value);
}
