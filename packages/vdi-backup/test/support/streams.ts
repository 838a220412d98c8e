/** Hand-built streams for codec tests: [idx, offset, data] records. */
export type RawRecord = [idx: number, offset: number, data: Buffer | number];

const u32 = (...values: number[]) => {
  const out = Buffer.alloc(4 * values.length);
  values.forEach((value, index) => {
    out.writeUInt32LE(value >>> 0, 4 * index);
  });
  return out;
};

const dataOf = (data: Buffer | number) =>
  typeof data === 'number' ? Buffer.alloc(data, 0x5a) : data;

/** A shipped (dog) stream: 8-byte header, records, end record. */
export function dogStream(
  records: RawRecord[],
  options: { end?: boolean; version?: number } = {},
): Buffer {
  const parts: Buffer[] = [u32(options.version ?? 1, 0x11921192)];
  for (const [idx, offset, data] of records) {
    const bytes = dataOf(data);
    parts.push(u32(idx, offset, bytes.byteLength, 0), bytes);
  }
  if (options.end ?? true) parts.push(u32(0xffffffff, 0, 0, 0));
  return Buffer.concat(parts);
}

/** The 2012 seed layout: 16-byte header with the count, records, no end record. */
export function seedStream(records: RawRecord[]): Buffer {
  const parts: Buffer[] = [u32(1, 0x11921192, records.length, 0)];
  for (const [idx, offset, data] of records) {
    const bytes = dataOf(data);
    parts.push(u32(idx, offset, bytes.byteLength, 0), bytes);
  }
  return Buffer.concat(parts);
}
