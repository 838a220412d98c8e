import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, readdir, truncate } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { FileDevice, MemoryDevice } from '@x/blockio';
import { makeTempDir, type TempDir } from '@x/test-utils';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileScanner, SCAN_THREADS_MIN_BYTES, scanThreads } from '../src/create/file-scanner.js';
import { createBackup, type SharedRanges } from '../src/index.js';
import { collector } from './support/memory.js';

const SECTOR = 512;

/**
 * Writes `bytes` to a new sparse file: only the sectors `allocated` says are written,
 * the rest are holes (zeros, and unallocated as far as the extents can tell).
 */
function sparseFile(path: string, bytes: Buffer, allocated: (sector: number) => boolean): void {
  const fd = openSync(path, 'w');
  try {
    for (let sector = 0; sector < bytes.byteLength / SECTOR; sector++) {
      if (allocated(sector)) writeSync(fd, bytes, sector * SECTOR, SECTOR, sector * SECTOR);
    }
  } finally {
    closeSync(fd);
  }
}

/** Two disks (of possibly different sizes), sparse, with scattered changes. */
const filePair = fc
  .record({
    objectSectors: fc.constantFrom(1, 8, 16, 64),
    fromObjects: fc.integer({ min: 1, max: 6 }),
    toObjects: fc.integer({ min: 1, max: 6 }),
  })
  .chain(({ objectSectors, fromObjects, toObjects }) => {
    const fromSectors = objectSectors * fromObjects - (fromObjects > 1 ? 1 : 0);
    const toSectors = objectSectors * toObjects;
    const sectors = Math.max(fromSectors, toSectors);
    return fc.record({
      objectSize: fc.constant(objectSectors * SECTOR),
      fromSectors: fc.constant(fromSectors),
      toSectors: fc.constant(toSectors),
      fill: fc.uint8Array({ minLength: sectors, maxLength: sectors }),
      // Runs of 8 sectors (a 4 KiB filesystem block): 0 hole in both, 1 "from", 2 "to", 3 both.
      allocation: fc.array(fc.integer({ min: 0, max: 3 }), {
        minLength: Math.ceil(sectors / 8),
        maxLength: Math.ceil(sectors / 8),
      }),
      changed: fc.array(fc.integer({ min: 0, max: sectors - 1 }), { maxLength: 10 }),
      // Bytes each thread reads at a time: sizes that divide the object and sizes that do not.
      pieceSectors: fc.integer({ min: 1, max: 20 }),
      threads: fc.integer({ min: 1, max: 3 }),
      // Sectors said to be stored in the same place (read as "to"'s when inside a record).
      shared: fc.array(fc.integer({ min: 0, max: sectors - 1 }), { maxLength: 6 }),
    });
  });

describe('create compares two files on worker threads (FileScanner)', () => {
  let temp: TempDir;
  beforeAll(async () => {
    temp = await makeTempDir('vdi-scanner-');
  });
  afterAll(() => temp.remove());

  let run = 0;
  it('gives the same stream and counts as comparing on the calling thread', async () => {
    await fc.assert(
      fc.asyncProperty(filePair, async (s) => {
        const sectors = Math.max(s.fromSectors, s.toSectors);
        const base = Buffer.alloc(sectors * SECTOR);
        for (let sector = 0; sector < sectors; sector++) {
          base.fill(s.fill[sector] ?? 0, sector * SECTOR, (sector + 1) * SECTOR);
        }
        const changed = Buffer.from(base);
        for (const sector of s.changed) {
          const at = sector * SECTOR + ((sector * 37) % SECTOR);
          changed[at] = (changed[at] ?? 0) ^ 0xa5;
        }
        const block = (sector: number) => s.allocation[Math.floor(sector / 8)] ?? 0;
        const fromPath = temp.file(`from-${run}.raw`);
        const toPath = temp.file(`to-${run}.raw`);
        run++;
        sparseFile(fromPath, base.subarray(0, s.fromSectors * SECTOR), (x) => (block(x) & 1) !== 0);
        sparseFile(toPath, changed.subarray(0, s.toSectors * SECTOR), (x) => (block(x) & 2) !== 0);
        await truncate(fromPath, s.fromSectors * SECTOR);
        await truncate(toPath, s.toSectors * SECTOR);

        // Only sectors that are equal on both sides can be shared storage.
        const sharedSectors = [...new Set(s.shared)]
          .filter(
            (sector) =>
              sector < Math.min(s.fromSectors, s.toSectors) &&
              block(sector) === 3 &&
              !s.changed.includes(sector),
          )
          .sort((a, b) => a - b);
        const sharedRanges: SharedRanges = async (offset, length) =>
          sharedSectors
            .map((sector) => [sector * SECTOR, (sector + 1) * SECTOR] as const)
            .filter(([start, end]) => start >= offset && end <= offset + length);

        const create = async (compareThreads: number, readSize?: number) => {
          const from = await FileDevice.open(fromPath);
          const to = await FileDevice.open(toPath);
          try {
            const sink = collector();
            const result = await createBackup(from, to, {
              output: sink,
              objectSize: s.objectSize,
              compareThreads,
              readSize,
              sharedRanges,
            });
            return { stream: sink.bytes(), result };
          } finally {
            await from.close();
            await to.close();
          }
        };
        const here = await create(0);
        const threads = await create(s.threads, s.pieceSectors * SECTOR);
        expect(threads.stream.equals(here.stream)).toBe(true);
        expect(threads.result).toEqual(here.result);
      }),
      { numRuns: 40 },
    );
  });

  it('names the file and offset when a file is shorter than its device says, and leaves no output', async () => {
    const objectSize = 64 * 1024;
    const bytes = Buffer.alloc(8 * objectSize, 7);
    const fromPath = temp.file('short-from.raw');
    const toPath = temp.file('short-to.raw');
    sparseFile(fromPath, bytes, () => true);
    sparseFile(toPath, bytes.subarray(0, 5 * objectSize + 4096), () => true);
    // As if "to" shrank after it was opened: its device still says 8 objects.
    const from = await FileDevice.open(fromPath);
    const to = await FileDevice.open(toPath, { size: bytes.byteLength });
    const directory = temp.file('short-out');
    await mkdir(directory);
    try {
      await expect(
        createBackup(from, to, {
          output: `${directory}/diff.backup`,
          objectSize,
          compareThreads: 2,
        }),
      ).rejects.toMatchObject({
        code: 'SHORT_READ',
        path: toPath,
        offset: 5 * objectSize + 4096,
      });
    } finally {
      await from.close();
      await to.close();
    }
    expect(await readdir(directory)).toEqual([]);
  });

  it('stops when aborted, and leaves no output', async () => {
    const objectSize = 64 * 1024;
    const path = temp.file('abort.raw');
    sparseFile(path, Buffer.alloc(64 * objectSize, 1), () => true);
    const from = await FileDevice.open(path);
    const to = await FileDevice.open(path);
    const directory = temp.file('abort-out');
    await mkdir(directory);
    const controller = new AbortController();
    try {
      await expect(
        createBackup(from, to, {
          output: `${directory}/diff.backup`,
          objectSize,
          compareThreads: 2,
          signal: controller.signal,
          // The first report comes after the first object: objects are in flight then.
          onProgress: () => controller.abort(),
        }),
      ).rejects.toMatchObject({ code: 'ABORTED' });
    } finally {
      await from.close();
      await to.close();
    }
    expect(await readdir(directory)).toEqual([]);
  });

  it('answers spans directly: first and last differing sectors, zeros past the end of "from"', async () => {
    const fromPath = temp.file('direct-from.raw');
    const toPath = temp.file('direct-to.raw');
    const fromBytes = Buffer.alloc(16 * SECTOR, 3);
    const toBytes = Buffer.alloc(24 * SECTOR, 3);
    toBytes[5 * SECTOR + 100] = 9;
    toBytes[9 * SECTOR] = 9;
    toBytes.fill(0, 16 * SECTOR); // past the end of "from": equal to its zeros ...
    toBytes[20 * SECTOR + 511] = 1; // ... except here
    sparseFile(fromPath, fromBytes, () => true);
    sparseFile(toPath, toBytes, () => true);
    const from = await FileDevice.open(fromPath);
    const to = await FileDevice.open(toPath);
    const scanner = await FileScanner.start(from, to, 2, 2 * SECTOR);
    try {
      expect(await scanner.scan([[0, 24 * SECTOR]])).toEqual({
        first: 5 * SECTOR,
        last: 20 * SECTOR,
      });
      expect(await scanner.scan([[0, 5 * SECTOR]])).toEqual({ first: -1, last: -1 });
      expect(
        await scanner.scan([
          [0, 4 * SECTOR],
          [9 * SECTOR, 10 * SECTOR],
          [16 * SECTOR, 20 * SECTOR],
        ]),
      ).toEqual({ first: 9 * SECTOR, last: 9 * SECTOR });
      expect(await scanner.scan([])).toEqual({ first: -1, last: -1 });
    } finally {
      await scanner.close();
      await from.close();
      await to.close();
    }
    await expect(scanner.scan([[0, SECTOR]])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('is used for two files of 64 MiB and more, by default, and never for other devices', async () => {
    const small = temp.file('small.raw');
    const large = temp.file('large.raw');
    sparseFile(small, Buffer.alloc(SECTOR), () => true);
    sparseFile(large, Buffer.alloc(SECTOR), () => true);
    await truncate(large, SCAN_THREADS_MIN_BYTES);
    const a = await FileDevice.open(small);
    const b = await FileDevice.open(large);
    const memory = new MemoryDevice(Buffer.alloc(SCAN_THREADS_MIN_BYTES));
    try {
      expect(scanThreads(a, a, undefined)).toBe(0);
      expect(scanThreads(b, b, undefined)).toBe(
        availableParallelism() > 1 ? Math.min(4, availableParallelism()) : 0,
      );
      expect(scanThreads(a, a, 3)).toBe(3);
      expect(scanThreads(memory, b, 2)).toBe(0);
      expect(() => scanThreads(a, a, -1)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
      expect(() => scanThreads(memory, memory, 1.5)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    } finally {
      await a.close();
      await b.close();
    }
  });
});
