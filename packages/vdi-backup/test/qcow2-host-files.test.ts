import { writeFile } from 'node:fs/promises';
import { MemoryDevice } from '@x/blockio';
import { createQcow2, type GuestMapping, openQcow2, type Qcow2Image, SalvageLog } from '@x/qcow2';
import { makeTempDir, type TempDir } from '@x/test-utils';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createBackup,
  type HostFiles,
  qcow2HostFiles,
  qcow2SharedRanges,
  type SharedRanges,
} from '../src/index.js';
import { locateSpans } from '../src/sources/qcow2-host-files.js';
import { collector } from './support/memory.js';

const SECTOR = 512;
const CLUSTER = 4096;

const normal = (offset: number, length: number, hostOffset: number): GuestMapping => ({
  offset,
  length,
  type: 'normal',
  hostOffset,
});

describe('locateSpans: where two QCOW2 views keep a guest range', () => {
  it('places normal clusters at their host offsets and zeros at -1, merged where both continue', () => {
    const from = [normal(0, 8192, 65536), normal(8192, 4096, 16384)];
    const to = [normal(0, 12288, 131072)];
    expect(locateSpans([[1024, 12288]], from, [], to, [])).toEqual([
      { offset: 1024, length: 7168, from: 66560, to: 132096 },
      { offset: 8192, length: 4096, from: 16384, to: 139264 },
    ]);
    // "from" reads zeros past 8 KiB (a smaller or unallocated "from"): -1 there.
    const longer = [normal(0, 16384, 131072)];
    expect(
      locateSpans(
        [
          [0, 4096],
          [8192, 16384],
        ],
        from.slice(0, 1),
        [[8192, 16384]],
        longer,
        [],
      ),
    ).toEqual([
      { offset: 0, length: 4096, from: 65536, to: 131072 },
      { offset: 8192, length: 8192, from: -1, to: 139264 },
    ]);
    // "to" has no place for [12 KiB, 16 KiB): nothing is placed.
    expect(locateSpans([[8192, 16384]], from, [[8192, 16384]], to, [])).toBeUndefined();
  });

  it('places nothing when a side keeps part of it otherwise (compressed, backing data)', () => {
    const compressed: GuestMapping = {
      offset: 4096,
      length: 4096,
      type: 'compressed',
      hostOffset: undefined,
    };
    const from = [normal(0, 4096, 65536), compressed];
    const to = [normal(0, 8192, 131072)];
    expect(locateSpans([[0, 8192]], from, [], to, [])).toBeUndefined();
    // Outside the spans asked for, it does not matter.
    expect(locateSpans([[0, 4096]], from, [], to, [])).toEqual([
      { offset: 0, length: 4096, from: 65536, to: 131072 },
    ]);
    // Unallocated with no zero span: a backing file's data.
    const unallocated: GuestMapping = {
      offset: 0,
      length: 8192,
      type: 'unallocated',
      hostOffset: undefined,
    };
    expect(locateSpans([[0, 8192]], [unallocated], [], to, [])).toBeUndefined();
    expect(locateSpans([[0, 8192]], [unallocated], [[0, 8192]], to, [])).toEqual([
      { offset: 0, length: 8192, from: -1, to: 131072 },
    ]);
  });
});

type Op =
  | { kind: 'data'; sector: number; sectors: number; byte: number }
  | { kind: 'compressed'; cluster: number; byte: number }
  | { kind: 'zero'; cluster: number; clusters: number; unmap: boolean };

const CLUSTERS = 24;
const op = fc.oneof(
  fc.record({
    kind: fc.constant('data' as const),
    sector: fc.integer({ min: 0, max: (CLUSTERS * CLUSTER) / SECTOR - 1 }),
    sectors: fc.integer({ min: 1, max: 20 }),
    byte: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({
    kind: fc.constant('compressed' as const),
    cluster: fc.integer({ min: 0, max: CLUSTERS - 1 }),
    byte: fc.integer({ min: 0, max: 3 }),
  }),
  fc.record({
    kind: fc.constant('zero' as const),
    cluster: fc.integer({ min: 0, max: CLUSTERS - 1 }),
    clusters: fc.integer({ min: 1, max: 3 }),
    unmap: fc.boolean(),
  }),
);

const scenario = fc.record({
  backing: fc.boolean(),
  before: fc.array(op, { maxLength: 10 }),
  between: fc.array(op, { maxLength: 8 }),
  /** s2 grows the disk by this many clusters (the end of "from" reads as zeros). */
  grow: fc.constantFrom(0, 0, 0, 3),
  /** "to" is s2, or the active layer (written after s2). */
  toActive: fc.boolean(),
  after: fc.array(op, { maxLength: 4 }),
  objectSize: fc.constantFrom(4096, 8192, 16384),
  /** Pieces read at a time: many per object, so first, last and between all come up. */
  readSize: fc.constantFrom(512, 1024, 4096),
  threads: fc.integer({ min: 1, max: 2 }),
});

/** Varied bytes: a byte's pattern, different in every sector so a shifted copy differs. */
function pattern(byte: number, offset: number, length: number): Buffer {
  const out = Buffer.alloc(length, byte);
  for (let at = 0; at < length; at += SECTOR)
    out.writeUInt32LE(((offset + at) ^ (byte << 24)) >>> 0, at);
  return out;
}

async function apply(image: Qcow2Image, ops: Op[]): Promise<void> {
  for (const o of ops) {
    if (o.kind === 'data') {
      const offset = o.sector * SECTOR;
      const length = Math.min(o.sectors * SECTOR, image.size - offset);
      await image.write(offset, pattern(o.byte, offset, length));
    } else if (o.kind === 'compressed') {
      const offset = o.cluster * CLUSTER;
      const bytes = Buffer.alloc(CLUSTER, o.byte);
      // Compressed clusters are written only where nothing is allocated; else plainly.
      await image.writeCompressed(offset, bytes).catch(async (error: { code?: string }) => {
        if (error.code !== 'UNSUPPORTED') throw error;
        await image.write(offset, bytes);
      });
    } else {
      const offset = o.cluster * CLUSTER;
      const length = Math.min(o.clusters * CLUSTER, image.size - offset);
      await image.writeZeroes(offset, length, { unmap: o.unmap });
    }
  }
}

async function stream(
  from: Qcow2Image | MemoryDevice,
  to: Qcow2Image | MemoryDevice,
  options: {
    objectSize: number;
    sharedRanges?: SharedRanges | undefined;
    hostFiles?: HostFiles | undefined;
    compareThreads?: number;
    readSize?: number;
  },
) {
  const sink = collector();
  const result = await createBackup(from, to, { output: sink, ...options });
  return { result, bytes: sink.bytes() };
}

type Result = Awaited<ReturnType<typeof createBackup>>;

/**
 * The host files path reads "to" alone between an object's first and last difference:
 * the same counts but for fewer bytes read (more skipped), never more, and every byte
 * either read or skipped.
 */
function sameCounts(hosted: Result, here: Result): boolean {
  const { bytesRead, bytesSkipped, ...rest } = hosted;
  const { bytesRead: hereRead, bytesSkipped: hereSkipped, ...hereRest } = here;
  expect(rest).toEqual(hereRest);
  expect(bytesRead).toBeLessThanOrEqual(hereRead);
  expect(bytesRead + bytesSkipped).toBe(hereRead + hereSkipped);
  return true;
}

async function readAll(device: Qcow2Image): Promise<MemoryDevice> {
  return new MemoryDevice(await device.read(0, device.size));
}

describe('create reads QCOW2 views from the image file at their host offsets (hostFiles)', () => {
  let temp: TempDir;
  beforeAll(async () => {
    temp = await makeTempDir('vdi-host-files-');
  });
  afterAll(() => temp.remove());

  let run = 0;
  /** Objects the property's runs placed in the files, and objects left to the calling thread. */
  const seen = { placed: 0, notPlaced: 0 };
  const counting = (hostFiles: HostFiles): HostFiles => ({
    ...hostFiles,
    locate: async (spans, fromZero, toZero) => {
      const located = await hostFiles.locate(spans, fromZero, toZero);
      if (located) seen.placed++;
      else seen.notPlaced++;
      return located;
    },
  });
  it('gives the stream and counts of reading through the views, here and on threads, with compressed, zero, backing and grown clusters', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const dir = temp.file(`run-${run++}`);
        const { mkdir } = await import('node:fs/promises');
        await mkdir(dir);
        const path = `${dir}/disk.qcow2`;
        const size = CLUSTERS * CLUSTER;
        if (s.backing) {
          await writeFile(`${dir}/base.raw`, pattern(9, 0, size / 2));
          await createQcow2(path, {
            size,
            clusterSize: CLUSTER,
            backingFile: 'base.raw',
            backingFormat: 'raw',
          });
        } else {
          await createQcow2(path, { size, clusterSize: CLUSTER });
        }
        const image = await openQcow2(path, { writable: true, backingPolicy: 'allow' });
        try {
          await apply(image, s.before);
          await image.createSnapshot('s1');
          if (s.grow > 0) await image.resize(size + s.grow * CLUSTER);
          await apply(image, s.between);
          await image.createSnapshot('s2');
          await apply(image, s.after);
        } finally {
          await image.close();
        }
        const backingPolicy = 'allow' as const;
        const from = await openQcow2(path, { snapshot: 's1', backingPolicy });
        const to = await openQcow2(
          path,
          s.toActive ? { backingPolicy } : { snapshot: 's2', backingPolicy },
        );
        try {
          const hostFiles = counting(qcow2HostFiles(from, to) as HostFiles);
          const sharedRanges = qcow2SharedRanges(from, to);
          const { objectSize, readSize } = s;
          const here = await stream(from, to, {
            objectSize,
            sharedRanges,
            compareThreads: 0,
            readSize,
          });
          const fromHost = await stream(from, to, {
            objectSize,
            sharedRanges,
            hostFiles,
            readSize,
          });
          const threads = await stream(from, to, {
            objectSize,
            sharedRanges,
            hostFiles,
            compareThreads: s.threads,
          });
          const whole = await stream(await readAll(from), await readAll(to), { objectSize });
          expect(here.bytes.equals(whole.bytes)).toBe(true);
          expect(fromHost.bytes.equals(here.bytes)).toBe(true);
          expect(sameCounts(fromHost.result, here.result)).toBe(true);
          expect(threads.bytes.equals(here.bytes)).toBe(true);
          expect(threads.result).toEqual(here.result);
        } finally {
          await from.close();
          await to.close();
        }
      }),
      { numRuns: 25 },
    );
    // Both kinds of object came up: on the threads, and read here (compressed, backing).
    expect(seen.placed).toBeGreaterThan(0);
    expect(seen.notPlaced).toBeGreaterThan(0);
    // Each run writes an image and makes four streams (one starting worker threads):
    // ~0.5 s on a quiet machine, several seconds on a loaded one.
  }, 300_000);

  it('a host file that ends early is a typed error naming the image, here and on threads', async () => {
    const path = temp.file('short.qcow2');
    await createQcow2(path, { size: 64 * CLUSTER, clusterSize: CLUSTER });
    const image = await openQcow2(path, { writable: true });
    await image.write(0, pattern(1, 0, 64 * CLUSTER));
    await image.createSnapshot('s1');
    await image.write(60 * CLUSTER, pattern(2, 0, 4 * CLUSTER));
    await image.close();
    const from = await openQcow2(path, { snapshot: 's1' });
    const to = await openQcow2(path);
    try {
      const hostFiles = qcow2HostFiles(from, to) as HostFiles;
      // The last clusters s2 wrote are cut off after the views mapped the file (their
      // L2 tables are cached: only the data reads see the file end).
      await from.mapGuestRange(0, from.size);
      await to.mapGuestRange(0, to.size);
      const { truncate } = await import('node:fs/promises');
      const { size } = await import('node:fs/promises').then((fs) => fs.stat(path));
      await truncate(path, size - 3 * CLUSTER);
      for (const compareThreads of [0, 1]) {
        await expect(
          stream(from, to, {
            objectSize: 16 * CLUSTER,
            sharedRanges: qcow2SharedRanges(from, to),
            hostFiles,
            compareThreads,
          }),
        ).rejects.toMatchObject({ code: 'SHORT_READ', path });
      }
    } finally {
      await from.close();
      await to.close();
    }
  });

  it('is not offered for views that salvage a damaged image', async () => {
    const path = temp.file('salvage.qcow2');
    await createQcow2(path, { size: 4 * CLUSTER, clusterSize: CLUSTER });
    const from = await openQcow2(path, { salvage: new SalvageLog() });
    const to = await openQcow2(path);
    try {
      expect(qcow2HostFiles(from, to)).toBeUndefined();
    } finally {
      await from.close();
      await to.close();
    }
  });
});
