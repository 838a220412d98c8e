import { MemoryDevice } from '@x/blockio';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyBackup, BackupReader, createBackup, mergeBackups } from '../src/index.js';
import { collector, TrackedDisk } from './support/memory.js';

const SECTOR = 512;

/** A disk of `sectors` sectors and a list of sector writes that turn it into another. */
const diskPair = fc
  .record({
    objectSectors: fc.constantFrom(1, 2, 4, 8, 16),
    objects: fc.integer({ min: 1, max: 12 }),
    seed: fc.integer({ min: 0, max: 255 }),
  })
  .chain(({ objectSectors, objects, seed }) => {
    const sectors = objectSectors * objects;
    const write = fc.record({
      sector: fc.integer({ min: 0, max: sectors - 1 }),
      count: fc.integer({ min: 1, max: 3 }),
      byte: fc.integer({ min: 0, max: 3 }),
      at: fc.integer({ min: 0, max: SECTOR - 1 }),
    });
    return fc.record({
      objectSize: fc.constant(objectSectors * SECTOR),
      sectors: fc.constant(sectors),
      seed: fc.constant(seed),
      base: fc.array(write, { maxLength: 8 }),
      changes: fc.array(fc.array(write, { maxLength: 6 }), { minLength: 1, maxLength: 3 }),
    });
  });

type Write = { sector: number; count: number; byte: number; at: number };

function applyWrites(image: Buffer, writes: Write[]): Buffer {
  const out = Buffer.from(image);
  for (const { sector, count, byte, at } of writes) {
    const start = sector * SECTOR + (byte === 0 ? 0 : at);
    const end = Math.min(out.byteLength, start + count * SECTOR - (byte === 0 ? 0 : at));
    out.fill(byte, start, end);
  }
  return out;
}

async function backup(from: MemoryDevice, to: MemoryDevice, objectSize: number): Promise<Buffer> {
  const sink = collector();
  await createBackup(from, to, { output: sink, objectSize });
  return sink.bytes();
}

async function apply(base: Buffer, stream: Buffer, objectSize: number): Promise<Buffer> {
  const device = new MemoryDevice(base);
  const reader = await BackupReader.open(new MemoryDevice(stream), {
    objectSize,
    imageSize: base.byteLength,
  });
  await applyBackup(reader, device);
  return Buffer.from(device.bytes);
}

describe('properties', () => {
  it('restore(from, create(from, to)) == to, for random disks and object sizes', async () => {
    await fc.assert(
      fc.asyncProperty(diskPair, async ({ objectSize, sectors, base, changes }) => {
        const from = applyWrites(Buffer.alloc(sectors * SECTOR), base);
        const to = applyWrites(from, changes.flat());
        const stream = await backup(new MemoryDevice(from), new MemoryDevice(to), objectSize);
        expect((await apply(from, stream, objectSize)).equals(to)).toBe(true);
        // Reverse diffs work too (dog allows -F newer than -s).
        const back = await backup(new MemoryDevice(to), new MemoryDevice(from), objectSize);
        expect((await apply(to, back, objectSize)).equals(from)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it('merge equals applying the streams one after another', async () => {
    await fc.assert(
      fc.asyncProperty(diskPair, async ({ objectSize, sectors, base, changes }) => {
        const images = [applyWrites(Buffer.alloc(sectors * SECTOR), base)];
        for (const step of changes) images.push(applyWrites(images.at(-1) as Buffer, step));
        const streams: Buffer[] = [];
        for (let i = 1; i < images.length; i++) {
          const from = new MemoryDevice(images[i - 1] as Buffer);
          streams.push(await backup(from, new MemoryDevice(images[i] as Buffer), objectSize));
        }
        let sequential = images[0] as Buffer;
        for (const stream of streams) sequential = await apply(sequential, stream, objectSize);
        const sink = collector();
        await mergeBackups(
          streams.map((stream) => new MemoryDevice(stream)),
          { output: sink, objectSize },
        );
        const merged = await apply(images[0] as Buffer, sink.bytes(), objectSize);
        expect(merged.equals(sequential)).toBe(true);
        expect(merged.equals(images.at(-1) as Buffer)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('create never reads an object both sides leave unallocated', async () => {
    await fc.assert(
      fc.asyncProperty(
        diskPair,
        fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
        fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
        async ({ objectSize, sectors, base, changes }, fromMap, toMap) => {
          const size = sectors * SECTOR;
          // Unallocated objects read as zeros, as a sparse disk's holes do.
          const mask = (image: Buffer, map: boolean[]) => {
            const out = Buffer.from(image);
            for (let idx = 0; idx * objectSize < size; idx++) {
              if (!map[idx]) out.fill(0, idx * objectSize, (idx + 1) * objectSize);
            }
            return out;
          };
          const fromBytes = mask(applyWrites(Buffer.alloc(size), base), fromMap);
          const toBytes = mask(applyWrites(fromBytes, changes.flat()), toMap);
          const allocated = (map: boolean[]) => (offset: number) =>
            map[Math.floor(offset / objectSize)] ?? false;
          const from = new TrackedDisk(fromBytes, allocated(fromMap), objectSize, 'from');
          const to = new TrackedDisk(toBytes, allocated(toMap), objectSize, 'to');
          const sink = collector();
          const result = await createBackup(from, to, { output: sink, objectSize });
          for (const { offset, length } of [...from.reads, ...to.reads]) {
            for (let at = offset; at < offset + length; at += objectSize) {
              const idx = Math.floor(at / objectSize);
              expect(fromMap[idx] || toMap[idx]).toBe(true);
            }
          }
          const neither = fromMap.filter((f, i) => !f && !toMap[i] && i * objectSize < size);
          expect(result.objectsSkippedUnallocated).toBe(neither.length);
          expect((await apply(fromBytes, sink.bytes(), objectSize)).equals(toBytes)).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });
});
