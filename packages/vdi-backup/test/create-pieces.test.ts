import { mkdir, readdir } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { type BlockDevice, BlockIoError, type ByteRange, readOnlyDevice } from '@x/blockio';
import { makeTempDir, type TempDir } from '@x/test-utils';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackup, type SharedRanges } from '../src/index.js';
import { collector, TrackedDisk } from './support/memory.js';

const SECTOR = 512;

/**
 * The same bytes and allocation as `disk`, read through the thread-pool-like path:
 * queue depth 4 and every read completing on a later turn of the event loop, so
 * several pieces and objects are in flight at once. `failAt` makes that read fail.
 */
function asyncDisk(disk: TrackedDisk, failAt?: (range: ByteRange) => boolean): BlockDevice {
  return readOnlyDevice({
    name: disk.name,
    size: disk.size,
    queueDepth: 4,
    async read(offset, into) {
      await new Promise((resolve) => setImmediate(resolve));
      if (failAt?.({ offset, length: into.byteLength })) {
        throw new BlockIoError('EIO', `read failed at ${offset}`, { path: disk.name, offset });
      }
      await disk.read(offset, into);
      return into.byteLength;
    },
    extents: (range) => disk.extents(range),
  });
}

/** A pair of disks with random allocation, random sector changes and random shared ranges. */
const scenario = fc
  .record({
    objectSectors: fc.constantFrom(1, 2, 4, 8, 16, 32),
    objects: fc.integer({ min: 1, max: 8 }),
  })
  .chain(({ objectSectors, objects }) => {
    const sectors = objectSectors * objects;
    return fc.record({
      objectSize: fc.constant(objectSectors * SECTOR),
      sectors: fc.constant(sectors),
      // Read sizes that divide the object and sizes that do not, down to one sector.
      readSectors: fc.integer({ min: 1, max: objectSectors + 2 }),
      fill: fc.uint8Array({ minLength: sectors, maxLength: sectors }),
      changed: fc.array(fc.integer({ min: 0, max: sectors - 1 }), { maxLength: 12 }),
      // 0: unallocated (zeros) in both, 1: allocated in "from", 2: in "to", 3: in both.
      allocation: fc.array(fc.integer({ min: 0, max: 3 }), {
        minLength: sectors,
        maxLength: sectors,
      }),
      shared: fc.array(fc.integer({ min: 0, max: sectors - 1 }), { maxLength: 6 }),
      threadPool: fc.boolean(),
    });
  });

describe('create reads and compares objects piece by piece', () => {
  it('gives the same stream for every read size, synchronous or not, as whole-object reads', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const size = s.sectors * SECTOR;
        const fromBytes = Buffer.alloc(size);
        const toBytes = Buffer.alloc(size);
        for (let sector = 0; sector < s.sectors; sector++) {
          const allocation = s.allocation[sector] ?? 0;
          const byte = s.fill[sector] ?? 0;
          // Unallocated sectors read as zeros, as a sparse file's holes do.
          if (allocation & 1) fromBytes.fill(byte, sector * SECTOR, (sector + 1) * SECTOR);
          if (allocation & 2) toBytes.fill(byte, sector * SECTOR, (sector + 1) * SECTOR);
        }
        for (const sector of s.changed) {
          const at = sector * SECTOR + (sector % SECTOR);
          if ((s.allocation[sector] ?? 0) & 2) toBytes[at] = (toBytes[at] ?? 0) ^ 0x5a;
        }
        // Shared sectors hold the same bytes on both sides (as shared storage does).
        const sharedSectors = s.shared.filter((sector) => s.allocation[sector] === 3);
        for (const sector of sharedSectors) {
          toBytes.copy(fromBytes, sector * SECTOR, sector * SECTOR, (sector + 1) * SECTOR);
        }
        const allocated = (bit: number) => (offset: number) =>
          ((s.allocation[Math.floor(offset / SECTOR)] ?? 0) & bit) !== 0;
        const sharedRanges: SharedRanges = async (offset, length) =>
          [...new Set(sharedSectors)]
            .sort((a, b) => a - b)
            .map((sector) => [sector * SECTOR, (sector + 1) * SECTOR] as const)
            .filter(([start, end]) => start >= offset && end <= offset + length);

        const run = async (readSize: number | undefined, threadPool: boolean) => {
          const from = new TrackedDisk(fromBytes, allocated(1), SECTOR, 'from');
          const to = new TrackedDisk(toBytes, allocated(2), SECTOR, 'to');
          const sink = collector();
          const result = await createBackup(
            threadPool ? asyncDisk(from) : from,
            threadPool ? asyncDisk(to) : to,
            { output: sink, objectSize: s.objectSize, readSize, sharedRanges },
          );
          return { stream: sink.bytes(), result };
        };
        const whole = await run(s.objectSize, false);
        const pieces = await run(s.readSectors * SECTOR, s.threadPool);
        expect(pieces.stream.equals(whole.stream)).toBe(true);
        expect(pieces.result).toEqual(whole.result);
        // The default (64 KiB, or whole objects for queued devices) agrees too.
        expect((await run(undefined, s.threadPool)).stream.equals(whole.stream)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a read size that is not a multiple of 512', async () => {
    const disk = new TrackedDisk(Buffer.alloc(8192), () => true, 4096);
    await expect(
      createBackup(disk, disk, { output: collector(), objectSize: 4096, readSize: 1000 }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('a failure while pieces are in flight', () => {
  let temp: TempDir;
  beforeAll(async () => {
    temp = await makeTempDir('vdi-pieces-');
  });
  afterAll(() => temp.remove());

  const objectSize = 64 * 1024;
  const objects = 64;
  const pair = () => {
    const fromBytes = Buffer.alloc(objects * objectSize, 0x11);
    const toBytes = Buffer.from(fromBytes);
    // Every other object changed: records are written (and the writer is busy) when the read fails.
    for (let idx = 0; idx < objects; idx += 2)
      toBytes.fill(0x22, idx * objectSize, (idx + 1) * objectSize);
    return {
      from: new TrackedDisk(fromBytes, () => true, objectSize, 'from.raw'),
      to: new TrackedDisk(toBytes, () => true, objectSize, 'to.raw'),
    };
  };
  // A read in the middle of object 50 fails: 1.6 MiB of records are staged by then, so
  // the first megabyte is being written (or written) when it does.
  const failing = ({ offset, length }: ByteRange) =>
    offset <= 50 * objectSize + 8192 && offset + length > 50 * objectSize + 8192;

  it.each([
    ['on the thread pool (several objects in flight)', true],
    ['on the calling thread', false],
  ])('fails create and leaves no output, reading %s', async (_name, threadPool) => {
    const { from, to } = pair();
    const directory = temp.file(threadPool ? 'pool' : 'sync');
    await mkdir(directory);
    const output = `${directory}/diff.backup`;
    const fromDevice = threadPool ? asyncDisk(from, failing) : from;
    const toDevice = threadPool
      ? asyncDisk(to)
      : readOnlyDevice({
          name: 'to.raw',
          size: to.size,
          queueDepth: 1,
          async read(offset, into) {
            if (failing({ offset, length: into.byteLength })) {
              throw new BlockIoError('EIO', `read failed at ${offset}`, { path: 'to.raw', offset });
            }
            await to.read(offset, into);
            return into.byteLength;
          },
        });
    await expect(
      createBackup(fromDevice, toDevice, { output, objectSize, readSize: 16 * 1024 }),
    ).rejects.toMatchObject({ code: 'EIO', offset: expect.any(Number) });
    expect(await readdir(directory)).toEqual([]);
  });

  it('fails create when the output fails while earlier data is still being written', async () => {
    const { from, to } = pair();
    let chunks = 0;
    const output = new Writable({
      highWaterMark: 1,
      write(_chunk, _encoding, callback) {
        chunks++;
        // The first write succeeds, later ones fail after a delay (a disk filling up).
        if (chunks === 1) callback();
        else
          setTimeout(() => callback(Object.assign(new Error('no space'), { code: 'ENOSPC' })), 5);
      },
    });
    await expect(createBackup(from, to, { output, objectSize: 1 << 20 })).rejects.toThrow(
      /no space/,
    );
  });
});
