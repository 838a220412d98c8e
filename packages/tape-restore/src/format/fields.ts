import { BlockIoError, type FieldType } from '@x/blockio';

/** A 24-bit unsigned little-endian integer (the tape block header's `size`, §2). */
export const u24le: FieldType<number> = {
  kind: 'u24le',
  size: 3,
  read: (view, offset) =>
    view.getUint8(offset) | (view.getUint8(offset + 1) << 8) | (view.getUint8(offset + 2) << 16),
  write(view, offset, value) {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffff) {
      throw new BlockIoError('OUT_OF_RANGE', `${value} does not fit in a u24le field`);
    }
    view.setUint8(offset, value & 0xff);
    view.setUint8(offset + 1, (value >>> 8) & 0xff);
    view.setUint8(offset + 2, value >>> 16);
  },
};

/** A signed 64-bit little-endian integer (ctime fields), decoded as bigint. */
export const i64le: FieldType<bigint> = {
  kind: 'i64le',
  size: 8,
  read: (view, offset) => view.getBigInt64(offset, true),
  write(view, offset, value) {
    if (value < -(1n << 63n) || value >= 1n << 63n) {
      throw new BlockIoError('OUT_OF_RANGE', `${value} does not fit in an i64le field`);
    }
    view.setBigInt64(offset, value, true);
  },
};
