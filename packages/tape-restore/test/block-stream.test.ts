import { makeTempDir, type TempDir } from '@x/test-utils';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOCK_PAYLOAD_SIZE, PROXMOX_TAPE_BLOCK_SIZE } from '../src/format/tape-block.js';
import { TapeRestoreError } from '../src/index.js';
import { blockStream, flip, readWholeFile, virtualTape } from './support/tape-files.js';

let temp: TempDir;
let counter = 0;
beforeAll(async () => {
  temp = await makeTempDir('tape-blocks-');
});
afterAll(() => temp.remove());

const tape = (files: Uint8Array[]) => virtualTape(temp.file(`d${counter++}`), 'T1', files);

async function expectCode(promise: Promise<unknown>, code: string, block?: number) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TapeRestoreError);
  expect((error as TapeRestoreError).code).toBe(code);
  expect((error as TapeRestoreError).tape).toBe('T1');
  expect((error as TapeRestoreError).fileNumber).toBe(0);
  if (block !== undefined) expect((error as TapeRestoreError).block).toBe(block);
  expect((error as TapeRestoreError).path).toMatch(/tapefile-0-T1\.json$/);
  return error as TapeRestoreError;
}

describe('tape block stream', () => {
  it('round-trips payloads of every size class, including a 0-byte final block', async () => {
    for (const size of [
      0,
      1,
      BLOCK_PAYLOAD_SIZE - 1,
      BLOCK_PAYLOAD_SIZE,
      BLOCK_PAYLOAD_SIZE + 1,
      3 * BLOCK_PAYLOAD_SIZE,
    ]) {
      const payload = Buffer.alloc(size, 7);
      const stream = blockStream(payload);
      expect(stream.byteLength).toBe(
        (Math.floor(size / BLOCK_PAYLOAD_SIZE) + 1) * PROXMOX_TAPE_BLOCK_SIZE,
      );
      const drive = await tape([stream]);
      expect((await readWholeFile(drive)).equals(payload)).toBe(true);
    }
  });

  it('reads the same bytes whatever the read sizes (property)', async () => {
    const payload = Buffer.from(
      Array.from({ length: 2 * BLOCK_PAYLOAD_SIZE + 999 }, (_, i) => (i * 31) & 0xff),
    );
    const drive = await tape([blockStream(payload)]);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 300_000 }), { minLength: 1, maxLength: 20 }),
        async (sizes) => {
          await drive.rewind();
          const next = await drive.readNextFile();
          if (next.kind !== 'file') throw new Error('no file');
          const parts: Buffer[] = [];
          for (let i = 0; ; i++) {
            const slice = Buffer.alloc(sizes[i % sizes.length] as number);
            const got = await next.reader.read(slice);
            if (got === 0) break;
            parts.push(slice.subarray(0, got));
          }
          await next.reader.close();
          expect(Buffer.concat(parts).equals(payload)).toBe(true);
        },
      ),
      { numRuns: 20 },
    );
  });

  it('refuses a wrong block magic, naming tape, file, block and offset', async () => {
    const stream = blockStream(Buffer.alloc(2 * BLOCK_PAYLOAD_SIZE, 1));
    flip(stream, PROXMOX_TAPE_BLOCK_SIZE, 0xff);
    const error = await expectCode(readWholeFile(await tape([stream])), 'BAD_MAGIC', 1);
    expect(error.offset).toBe(PROXMOX_TAPE_BLOCK_SIZE);
    expect(error.describe()).toMatch(/^tape T1 file 0 block 1: /);
  });

  it('refuses a broken sequence number', async () => {
    const stream = blockStream(Buffer.alloc(2 * BLOCK_PAYLOAD_SIZE, 1));
    stream.writeUInt32LE(5, 2 * PROXMOX_TAPE_BLOCK_SIZE + 12);
    await expectCode(readWholeFile(await tape([stream])), 'BAD_BLOCK', 2);
  });

  it('refuses a block size over the payload', async () => {
    const stream = blockStream(Buffer.alloc(10, 1));
    stream.writeUIntLE(BLOCK_PAYLOAD_SIZE + 1, 9, 3);
    await expectCode(readWholeFile(await tape([stream])), 'BAD_BLOCK', 0);
  });

  it('refuses a short block that is not the END_OF_STREAM block', async () => {
    const stream = blockStream(Buffer.alloc(BLOCK_PAYLOAD_SIZE + 10, 1));
    stream.writeUIntLE(100, 9, 3);
    await expectCode(readWholeFile(await tape([stream])), 'BAD_BLOCK', 0);
  });

  it('refuses a stream without an END_OF_STREAM block (filemark first)', async () => {
    const stream = blockStream(Buffer.alloc(BLOCK_PAYLOAD_SIZE + 10, 1));
    await expectCode(
      readWholeFile(await tape([stream.subarray(0, PROXMOX_TAPE_BLOCK_SIZE)])),
      'NO_END_MARKER',
      1,
    );
  });

  it('refuses a truncated block', async () => {
    const stream = blockStream(Buffer.alloc(BLOCK_PAYLOAD_SIZE + 10, 1));
    await expectCode(
      readWholeFile(await tape([stream.subarray(0, stream.byteLength - 1000)])),
      'BAD_BLOCK',
      1,
    );
  });

  it('refuses blocks after the END_OF_STREAM block', async () => {
    const stream = blockStream(Buffer.alloc(10, 1));
    await expectCode(readWholeFile(await tape([Buffer.concat([stream, stream])])), 'BAD_BLOCK', 0);
  });

  it('reports INCOMPLETE streams and treats an empty host file as a filemark', async () => {
    const drive = await tape([blockStream(Buffer.alloc(5, 1), true), Buffer.alloc(0)]);
    const first = await drive.readNextFile();
    if (first.kind !== 'file') throw new Error('no file');
    await first.reader.skipToEnd();
    expect(first.reader.incomplete).toBe(true);
    await first.reader.close();
    expect((await drive.readNextFile()).kind).toBe('filemark');
    expect((await drive.readNextFile()).kind).toBe('end-of-data');
    expect(drive.stats.tapeFilesOpened).toBe(1);
  });

  it('refuses to load a tape that is not in the drive', async () => {
    const drive = await tape([blockStream(Buffer.alloc(5))]);
    const error = await drive.loadMedia('NOPE').catch((e: unknown) => e);
    expect((error as TapeRestoreError).code).toBe('MEDIA_NOT_FOUND');
    expect((error as TapeRestoreError).tape).toBe('NOPE');
  });
});
