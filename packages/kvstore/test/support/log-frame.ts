import { crc32c, maskCrc32c } from '@x/blockio';

/** One FULL log record (header + payload) as LevelDB's log::Writer frames it; `payload` < 32 KiB. */
export function frameLogRecord(payload: Buffer, type = 1): Buffer {
  const header = Buffer.alloc(7);
  header.writeUInt32LE(maskCrc32c(crc32c(Buffer.concat([Buffer.from([type]), payload]))), 0);
  header.writeUInt16LE(payload.length, 4);
  header[6] = type;
  return Buffer.concat([header, payload]);
}

/** A write batch: sequence, count, then the records as given. */
export function writeBatch(sequence: bigint, count: number, records: Buffer): Buffer {
  const header = Buffer.alloc(12);
  header.writeBigUInt64LE(sequence, 0);
  header.writeUInt32LE(count, 8);
  return Buffer.concat([header, records]);
}

/** A kTypeValue record: tag, varint-length key, varint-length value (both < 128 bytes). */
export function putRecord(key: string, value: string): Buffer {
  return Buffer.concat([
    Buffer.from([1, key.length]),
    Buffer.from(key),
    Buffer.from([value.length]),
    Buffer.from(value),
  ]);
}

/** A RocksDB recyclable FULL record (type 5): the header also carries the writing log's number. */
export function frameRecyclableRecord(payload: Buffer, logNumber: number): Buffer {
  const header = Buffer.alloc(11);
  header.writeUInt16LE(payload.length, 4);
  header[6] = 5;
  header.writeUInt32LE(logNumber, 7);
  const covered = Buffer.concat([header.subarray(6), payload]);
  header.writeUInt32LE(maskCrc32c(crc32c(covered)), 0);
  return Buffer.concat([header, payload]);
}
