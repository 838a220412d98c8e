import { readFile, stat, writeFile } from 'node:fs/promises';
import { MemoryDevice } from '@x/blockio';
import { makeTempDir, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupReader, BackupWriter, VdiBackupError, verifyBackup } from '../src/index.js';
import { dogStream, type RawRecord, seedStream } from './support/streams.js';

const MiB = 1 << 20;

async function records(source: Buffer, objectSize = 4 * MiB) {
  const reader = await BackupReader.open(new MemoryDevice(source, { readOnly: true }), {
    objectSize,
  });
  const out: Array<[number, number, string]> = [];
  for await (const record of reader.records()) {
    out.push([record.idx, record.offset, (await reader.readData(record)).toString('hex')]);
  }
  return { layout: reader.layout, records: out, summary: reader.summary };
}

async function failure(source: Buffer, options: { objectSize?: number; imageSize?: number } = {}) {
  try {
    await BackupReader.open(
      new MemoryDevice(source, { readOnly: true, name: 'bad.backup' }),
      options,
    );
  } catch (error) {
    expect(error).toBeInstanceOf(VdiBackupError);
    return error as VdiBackupError;
  }
  throw new Error('expected the stream to be refused');
}

describe('stream writer and reader', () => {
  let temp: TempDir;
  beforeAll(async () => {
    temp = await makeTempDir('vdi-codec-');
  });
  afterAll(() => temp.remove());

  it('round-trips records through a file, byte-identical to a hand-built dog stream', async () => {
    const input: RawRecord[] = [
      [0, 0, Buffer.alloc(1024, 1)],
      [0, 2048, Buffer.alloc(512, 2)],
      [3, 4 * MiB - 512, Buffer.alloc(512, 3)],
      [7, 0, Buffer.alloc(3 * MiB, 4)],
    ];
    const path = temp.file('round.backup');
    const writer = await BackupWriter.create(path);
    for (const [idx, offset, data] of input) await writer.writeRecord(idx, offset, data as Buffer);
    await writer.finish();
    const bytes = await readFile(path);
    expect(bytes.equals(dogStream(input))).toBe(true);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(writer.bytesWritten).toBe(bytes.byteLength);
    const read = await records(bytes);
    expect(read.layout).toBe('dog');
    expect(read.records.map(([idx, offset]) => [idx, offset])).toEqual(
      input.map(([idx, offset]) => [idx, offset]),
    );
    expect(read.summary).toMatchObject({
      records: 4,
      objects: 3,
      dataBytes: 1024 + 512 + 512 + 3 * MiB,
    });
  });

  it('writes large records straight from the caller, who may reuse the buffer at once', async () => {
    // Records around the staging buffer's size and the direct-write threshold (256 KiB),
    // small ones between them, all through one reused buffer.
    const lengths = [512, 256 * 1024, 1024, 256 * 1024 - 512, MiB - 8, 4 * MiB, 512, 2 * MiB + 512];
    const input: RawRecord[] = lengths.map((length, idx) => {
      const data = Buffer.alloc(length - (length % 512));
      for (let i = 0; i < data.byteLength; i += 512) data.writeUInt32LE(idx * 100000 + i, i);
      return [idx, 0, data];
    });
    const path = temp.file('direct.backup');
    const writer = await BackupWriter.create(path, { sync: false });
    const reused = Buffer.alloc(4 * MiB);
    for (const [idx, offset, data] of input) {
      (data as Buffer).copy(reused);
      await writer.writeRecord(idx, offset, reused.subarray(0, (data as Buffer).byteLength));
      reused.fill(0xee);
    }
    await writer.finish();
    const bytes = await readFile(path);
    expect(bytes.equals(dogStream(input))).toBe(true);
    expect(writer.bytesWritten).toBe(bytes.byteLength);
  });

  it('with dataStays, writes large records behind: two buffers in turn, each reused after the next call', async () => {
    const lengths = [4 * MiB, 512, 2 * MiB, 256 * 1024, 1024, 4 * MiB, 3 * MiB - 512];
    const input: RawRecord[] = lengths.map((length, idx) => {
      const data = Buffer.alloc(length);
      for (let i = 0; i < data.byteLength; i += 512) data.writeUInt32LE(idx * 100000 + i, i);
      return [idx, 0, data];
    });
    const path = temp.file('behind.backup');
    const writer = await BackupWriter.create(path, { sync: false });
    const buffers = [Buffer.alloc(4 * MiB), Buffer.alloc(4 * MiB)];
    for (const [idx, offset, data] of input) {
      const turn = buffers[idx % 2] as Buffer;
      (data as Buffer).copy(turn);
      await writer.writeRecord(idx, offset, turn.subarray(0, (data as Buffer).byteLength), {
        dataStays: true,
      });
      // The other buffer (the record before) is free once this call returned.
      (buffers[(idx + 1) % 2] as Buffer).fill(0xee);
    }
    await writer.finish();
    const bytes = await readFile(path);
    expect(bytes.equals(dogStream(input))).toBe(true);
    expect(writer.bytesWritten).toBe(bytes.byteLength);
  });

  it('writes an empty diff as the 24 bytes dog writes', async () => {
    const path = temp.file('empty.backup');
    const writer = await BackupWriter.create(path);
    await writer.finish();
    expect((await readFile(path)).toString('hex')).toBe(
      '0100000092119211ffffffff000000000000000000000000',
    );
  });

  it('writer refuses records dog could not have written, and a file output never appears', async () => {
    const path = temp.file('refused.backup');
    const writer = await BackupWriter.create(path);
    await writer.writeRecord(2, 0, Buffer.alloc(512));
    await expect(writer.writeRecord(1, 0, Buffer.alloc(512))).rejects.toMatchObject({
      code: 'UNSORTED',
    });
    await expect(writer.writeRecord(3, 100, Buffer.alloc(512))).rejects.toMatchObject({
      code: 'BAD_RECORD',
    });
    await writer.abort();
    await expect(readFile(path)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(readFile(`${path}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses to replace an existing output unless told to', async () => {
    const path = temp.file('exists.backup');
    await writeFile(path, 'keep me');
    await expect(BackupWriter.create(path)).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await readFile(path, 'utf8')).toBe('keep me');
    const writer = await BackupWriter.create(path, { overwrite: true });
    await writer.finish();
    expect((await readFile(path)).byteLength).toBe(24);
  });

  it('reads the 2012 16-byte-header layout, told apart strictly', async () => {
    const input: RawRecord[] = [
      [0, 0, Buffer.alloc(512, 7)],
      [5, 1024, Buffer.alloc(1024, 8)],
    ];
    const seed = await records(seedStream(input));
    expect(seed.layout).toBe('seed-2012');
    const shipped = await records(dogStream(input));
    expect(shipped.layout).toBe('dog');
    expect(seed.records).toEqual(shipped.records);
    // An empty 2012 stream is just its header.
    expect((await records(seedStream([]))).layout).toBe('seed-2012');
    // A 2012 header whose count is one too many: neither layout parses.
    const short = seedStream(input);
    short.writeUInt32LE(3, 8);
    expect((await failure(short)).code).toBe('TRUNCATED');
  });

  it.each([
    ['an empty file', Buffer.alloc(0), 'TRUNCATED', 0],
    ['a header cut short', dogStream([]).subarray(0, 6), 'TRUNCATED', 0],
    [
      'a bad magic',
      Buffer.from('0100000092119212ffffffff000000000000000000000000', 'hex'),
      'BAD_MAGIC',
      4,
    ],
    ['version 2', dogStream([], { version: 2 }), 'BAD_VERSION', 0],
    ['no end record', dogStream([[0, 0, 512]], { end: false }), 'TRUNCATED', 536],
    ['a record header cut short', dogStream([[0, 0, 512]]).subarray(0, 540), 'TRUNCATED', 536],
    ['record data cut short', dogStream([[0, 0, 1024]]).subarray(0, 600), 'TRUNCATED', 600],
    [
      'bytes after the end record',
      Buffer.concat([dogStream([]), Buffer.alloc(1)]),
      'TRAILING_DATA',
      24,
    ],
    ['an unaligned offset', dogStream([[0, 100, 512]]), 'BAD_RECORD', 8],
    ['an unaligned length', dogStream([[0, 0, 500]]), 'BAD_RECORD', 8],
    ['an empty record', dogStream([[0, 0, 0]]), 'BAD_RECORD', 8],
    ['a record past its object', dogStream([[0, 4 * MiB - 512, 1024]]), 'BAD_RECORD', 8],
    [
      'unsorted objects',
      dogStream([
        [2, 0, 512],
        [1, 0, 512],
      ]),
      'UNSORTED',
      536,
    ],
    [
      'overlapping records',
      dogStream([
        [2, 0, 1024],
        [2, 512, 512],
      ]),
      'UNSORTED',
      1048,
    ],
    [
      'a bad end record',
      Buffer.concat([
        dogStream([], { end: false }),
        Buffer.from('ffffffff00000000000200000000000000', 'hex').subarray(0, 16),
      ]),
      'BAD_RECORD',
      8,
    ],
  ] as const)('refuses %s, naming the byte', async (_what, bytes, code, offset) => {
    const error = await failure(Buffer.from(bytes));
    expect(error.code).toBe(code);
    expect(error.offset).toBe(offset);
    expect(error.path).toBe('bad.backup');
  });

  it('checks records against the object size and the disk size it is given', async () => {
    const stream = dogStream([[1, 512 * 1024, 512]]);
    // Valid for 1 MiB objects: idx 1 starts at 1 MiB.
    expect((await records(stream, MiB)).records).toHaveLength(1);
    expect((await failure(stream, { objectSize: 512 * 1024 })).code).toBe('BAD_RECORD');
    expect((await failure(stream, { objectSize: 3 * MiB })).code).toBe('BAD_OBJECT_SIZE');
    expect((await failure(stream, { objectSize: MiB, imageSize: MiB })).code).toBe('TOO_LARGE');
    const summary = await verifyBackup(new MemoryDevice(stream), {
      objectSize: MiB,
      imageSize: 2 * MiB,
    });
    expect(summary.minimumImageSize).toBe(MiB + 512 * 1024 + 512);
  });

  it('several records per object (a merged stream) are fine when sorted and disjoint', async () => {
    const read = await records(
      dogStream([
        [4, 0, 512],
        [4, 512, 512],
        [4, 4096, 1024],
        [6, 0, 512],
      ]),
    );
    expect(read.summary).toMatchObject({ records: 4, objects: 2 });
  });
});
