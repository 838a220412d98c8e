import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  type BlockDevice,
  type ByteRange,
  clampRange,
  type Extent,
  FileDevice,
  MemoryDevice,
} from '@x/blockio';
import { cachedFixture, makeTempDir, runPeerOk, seededBytes } from '@x/test-utils';
import { deflateRaw } from 'pako';
import { afterAll, describe, expect, it } from 'vitest';
import { loadWasmZstd } from '../src/compression/wasm-zstd.js';
import {
  type ConvertToQcow2Options,
  convertToQcow2,
  deflateCluster,
  openQcow2,
  Qcow2Error,
  zstdCluster,
} from '../src/index.js';
import { compressedOrThrow, deflateWith } from '../src/write/deflate-cluster.js';
import { zstdCompressedOrThrow, zstdCompressWith } from '../src/write/zstd-cluster.js';
import { PACKAGE_ROOT, qemuImage } from './support/qemu-fixtures.js';
import {
  backingChain,
  convertedImage,
  dataFileImage,
  extendedL2Image,
  MIXED_WRITES,
  PLAIN_WRITES,
  snapshotImage,
} from './support/read-fixtures.js';
import { expectClean, firstDifference } from './write/support.js';

const temp = await makeTempDir('qcow2-convert-qcow2-');
afterAll(() => temp.remove());

/**
 * A sparse raw file whose data does not line up with anything: runs of random
 * and of compressible bytes at sector-but-not-cluster-aligned offsets, some
 * crossing 2 MiB (qemu-img's buffer) boundaries, with zero stretches inside
 * them of 100 B to 70 KiB (shorter and longer than qemu-img's 4 KiB minimum
 * hole), and a size that is not a multiple of any cluster size; once sparse
 * and once with every byte allocated.
 */
async function scatteredRaw(layout: 'sparse' | 'dense' = 'sparse'): Promise<string> {
  const directory = await cachedFixture(PACKAGE_ROOT, 'convert-scattered', 'v2', async (dir) => {
    const size = 12 * (1 << 20) + 7 * 512;
    const image = Buffer.alloc(size);
    let state = 12345;
    const next = (limit: number) => {
      state = (state * 1103515245 + 12345) >>> 0;
      return state % limit;
    };
    const skews = [0, 512, 1536, 4096, 32768];
    for (let i = 0; i < 24; i++) {
      const offset = Math.min(next(size >> 9) * 512 + (skews[i % skews.length] as number), size);
      const length = Math.min(1 + next(300_000), size - offset);
      const run =
        i % 3 === 0
          ? Buffer.from('qcow2 cluster sector '.repeat(Math.ceil(length / 21)).slice(0, length))
          : seededBytes(length, i);
      for (let count = 0; count < 4; count++) {
        const at = next(length);
        const hole = [100, 512, 3000, 4096, 8192, 70000][next(6)] as number;
        run.fill(0, at, Math.min(length, at + hole));
      }
      run.copy(image, offset);
    }
    // Data right up to the (odd) end, so the short last cluster is written.
    seededBytes(3000, 99).copy(image, size - 3000);
    // Dense: every byte written, so only qemu-img's zero scan finds the holes.
    await writeFile(join(dir, 'dense.raw'), image);
    // Sparse: holes wherever a file system block is zero, so block status finds them.
    const sparse = join(dir, 'sparse.raw');
    await writeFile(sparse, image);
    await runPeerOk('fallocate', ['--dig-holes', sparse]);
  });
  return join(directory, `${layout}.raw`);
}

/** Bytes QEMU's zlib parameters deflate `cluster` to, however many that is. */
const deflatedLength = (cluster: Uint8Array) =>
  deflateRaw(cluster, { level: -1, windowBits: 12, memLevel: 9, strategy: 0 }).byteLength;

/**
 * Clusters that deflate to exactly cluster_size - 1 bytes (QEMU stores them
 * uncompressed: zlib fills its cluster_size - 1 byte buffer and returns Z_OK,
 * not Z_STREAM_END) and to cluster_size - 2 (stored compressed): random bytes
 * with a zeroed head just long enough, found by search.
 */
function boundaryClusters(clusterSize: number): Buffer[] {
  const base = seededBytes(clusterSize, 1);
  return [clusterSize - 1, clusterSize - 2].map((target) => {
    for (let zeroed = 0; zeroed < clusterSize / 4; zeroed++) {
      const cluster = Buffer.from(base).fill(0, 0, zeroed);
      const length = deflatedLength(cluster);
      if (length === target) return cluster;
      if (length < target) break;
    }
    throw new Error(`no ${clusterSize}-byte cluster deflating to ${target} bytes found`);
  });
}

let counter = 0;

/**
 * Converts with our library and with `qemu-img convert -O qcow2` and expects
 * the same bytes, and an image qemu-img check calls clean.
 */
async function expectSameAsQemu(
  input: string,
  options: Pick<
    ConvertToQcow2Options,
    'clusterSize' | 'compress' | 'snapshot' | 'deflateWorkers' | 'compressionType'
  > = {},
  /** Convert this device (the same guest bytes as `input`) rather than the path. */
  source?: BlockDevice,
): Promise<Buffer> {
  const index = counter++;
  const ours = temp.file(`ours-${index}.qcow2`);
  const theirs = temp.file(`qemu-${index}.qcow2`);
  await convertToQcow2(source ?? input, ours, {
    ...options,
    ...(source ? {} : { backingPolicy: 'allow' }),
    sync: false,
  });
  const args = ['convert', '-O', 'qcow2'];
  if (options.compress) args.push('-c');
  if (options.clusterSize !== undefined) args.push('-o', `cluster_size=${options.clusterSize}`);
  if (options.compressionType !== undefined) {
    args.push('-o', `compression_type=${options.compressionType}`);
  }
  if (options.snapshot !== undefined) {
    const key = /^\d+$/.test(options.snapshot) ? 'snapshot.id' : 'snapshot.name';
    args.push('-l', `${key}=${options.snapshot}`);
  }
  await runPeerOk('qemu-img', [...args, input, theirs], { cwd: dirname(input) });
  const [a, b] = await Promise.all([readFile(ours), readFile(theirs)]);
  const where = firstDifference(a, b);
  expect(
    { sizes: [a.byteLength, b.byteLength], firstDifference: where },
    `${input} ${JSON.stringify(options)}`,
  ).toEqual({ sizes: [b.byteLength, b.byteLength], firstDifference: -1 });
  await expectClean(ours);
  return a;
}

const CLUSTER_SIZES = [512, 4096, 65536, 2 << 20];

describe('convertToQcow2 writes the bytes qemu-img convert -O qcow2 writes', () => {
  for (const clusterSize of CLUSTER_SIZES) {
    it(`raw source, ${clusterSize}-byte clusters, plain and compressed`, async () => {
      for (const layout of ['sparse', 'dense'] as const) {
        const input = await scatteredRaw(layout);
        await expectSameAsQemu(input, { clusterSize });
        await expectSameAsQemu(input, { clusterSize, compress: true });
      }
    });
  }

  it('the default cluster size is 64 KiB; -c deflates the same without worker threads', async () => {
    const image = await expectSameAsQemu(await scatteredRaw());
    expect(image.readUInt32BE(20)).toBe(16);
    await expectSameAsQemu(await scatteredRaw('dense'), { compress: true, deflateWorkers: 0 });
  });

  it('qcow2 source with data, zero, compressed, discarded and unaligned clusters', async () => {
    const input = await qemuImage('read-mixed', { size: '64M', commands: MIXED_WRITES });
    for (const clusterSize of [512, 65536, 2 << 20]) {
      await expectSameAsQemu(input, { clusterSize });
      await expectSameAsQemu(input, { clusterSize, compress: true });
    }
  });

  it('deflate- and zstd-compressed sources', async () => {
    for (const input of [
      await convertedImage('converted-zlib', { compress: true }),
      await convertedImage('converted-zstd', {
        compress: true,
        createOptions: 'compression_type=zstd',
      }),
    ]) {
      await expectSameAsQemu(input);
      await expectSameAsQemu(input, { compress: true });
      await expectSameAsQemu(input, { clusterSize: 4096 });
    }
  });

  it('a backing chain (raw base, qcow2 in between) read as one disk', async () => {
    const input = await backingChain('raw');
    await expectSameAsQemu(input);
    await expectSameAsQemu(input, { clusterSize: 4096, compress: true });
    await expectSameAsQemu(await backingChain('qcow2'), { clusterSize: 512 });
  });

  it('extended L2 (subclusters), external data file, metadata preallocation', async () => {
    const extended = await extendedL2Image();
    await expectSameAsQemu(extended);
    await expectSameAsQemu(extended, { clusterSize: 4096, compress: true });
    const dataFile = await dataFileImage(false);
    await expectSameAsQemu(dataFile);
    await expectSameAsQemu(dataFile, { compress: true });
    const preallocated = await qemuImage('convert-prealloc', {
      size: '16M',
      options: 'preallocation=metadata,cluster_size=4k',
      commands: PLAIN_WRITES.slice(0, 1).concat('write -P 0x61 9M 100k'),
    });
    await expectSameAsQemu(preallocated);
    await expectSameAsQemu(preallocated, { compress: true });
  });

  it('an internal snapshot, by name and by id', async () => {
    const input = await snapshotImage();
    await expectSameAsQemu(input, { snapshot: 's1' });
    await expectSameAsQemu(input, { snapshot: '2', compress: true });
  });

  it('a raw source whose size is not a multiple of 512', async () => {
    const input = temp.file('odd.raw');
    await writeFile(input, seededBytes(1_000_123, 5));
    const image = await expectSameAsQemu(input, { clusterSize: 4096 });
    expect(image.readBigUInt64BE(24)).toBe(1_000_448n);
    await expectSameAsQemu(input, { compress: true });
  });
});

/** Bytes libzstd's default level compresses `cluster` into (one frame), however many. */
async function zstdLength(cluster: Uint8Array): Promise<number> {
  const zstd = await loadWasmZstd();
  return (zstd.compress(cluster, 3) as Uint8Array).byteLength;
}

describe('convertToQcow2 -c with compression_type=zstd writes the bytes qemu-img writes', () => {
  it.each(CLUSTER_SIZES)('raw source, %i-byte clusters', async (clusterSize) => {
    for (const layout of ['sparse', 'dense'] as const) {
      const input = await scatteredRaw(layout);
      await expectSameAsQemu(input, { clusterSize, compress: true, compressionType: 'zstd' });
    }
  });

  it('qcow2 sources (mixed clusters, zlib- and zstd-compressed), on the calling thread too', async () => {
    const mixed = await qemuImage('read-mixed', { size: '64M', commands: MIXED_WRITES });
    await expectSameAsQemu(mixed, { compress: true, compressionType: 'zstd' });
    await expectSameAsQemu(mixed, {
      clusterSize: 4096,
      compress: true,
      compressionType: 'zstd',
      deflateWorkers: 0,
    });
    for (const input of [
      await convertedImage('converted-zlib', { compress: true }),
      await convertedImage('converted-zstd', {
        compress: true,
        createOptions: 'compression_type=zstd',
      }),
    ]) {
      await expectSameAsQemu(input, { compress: true, compressionType: 'zstd' });
    }
  });

  it('a frame of cluster_size - 1 bytes is kept; a cluster that does not fit is stored as it is', async () => {
    // 512-byte clusters: frames of 501-511 bytes are possible, then libzstd stores
    // a raw block (522 bytes). Random bytes behind a zeroed head just long enough.
    const clusterSize = 512;
    const base = seededBytes(clusterSize, 3);
    const found = new Map<number, Buffer>();
    for (let zeroed = 0; zeroed < clusterSize / 2 && !found.has(clusterSize - 2); zeroed++) {
      const cluster = Buffer.from(base).fill(0, 0, zeroed);
      const length = await zstdLength(cluster);
      if (!found.has(length)) found.set(length, cluster);
    }
    const plain = found.get(clusterSize + 10) as Buffer;
    const exact = found.get(clusterSize - 1) as Buffer;
    const oneLess = found.get(clusterSize - 2) as Buffer;
    expect([plain, exact, oneLess].every(Boolean)).toBe(true);
    expect(await zstdCluster(plain)).toBeUndefined();
    expect((await zstdCluster(exact))?.byteLength).toBe(clusterSize - 1);
    const input = temp.file('zstd-boundary.raw');
    await writeFile(input, Buffer.concat([exact, plain, oneLess, exact, plain]));
    await expectSameAsQemu(input, { clusterSize, compress: true, compressionType: 'zstd' });
  });

  it('qemu-img reads our zstd clusters back as the source', async () => {
    const input = await scatteredRaw('dense');
    const ours = temp.file('zstd-read-back.qcow2');
    await convertToQcow2(input, ours, { compress: true, compressionType: 'zstd', sync: false });
    const back = temp.file('zstd-read-back.raw');
    await runPeerOk('qemu-img', ['convert', '-O', 'raw', ours, back]);
    expect(Buffer.compare(await readFile(back), await readFile(input))).toBe(0);
    await runPeerOk('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', input, ours]);
  });

  it('a zstd failure is a typed COMPRESS_FAILED', () => {
    const outcome = zstdCompressWith({ compress: () => undefined }, new Uint8Array(4096));
    expect(outcome).toEqual({ status: -1, compressed: undefined });
    const heapFull = () => {
      throw new Error('libzstd could not allocate 65536 bytes');
    };
    expect(zstdCompressWith({ compress: heapFull }, new Uint8Array(4096))).toEqual(outcome);
    expect(() => zstdCompressedOrThrow(outcome)).toThrow(
      expect.objectContaining({ code: 'COMPRESS_FAILED', structure: 'compressed cluster' }),
    );
  });
});

/**
 * Guest bytes in memory that report their own holes: every run of at least
 * `minimum` zero bytes, wherever it starts (not sector aligned), as `kind`.
 */
class HoleReportingDevice extends MemoryDevice {
  readonly #holes: Extent[] = [];
  readonly rangesRead: ByteRange[] = [];

  constructor(bytes: Uint8Array, kind: 'zero' | 'unallocated', minimum = 1000) {
    super(bytes, { name: 'hole-reporting', readOnly: true });
    for (let at = 0; at < bytes.byteLength; ) {
      if (bytes[at] !== 0) {
        at++;
        continue;
      }
      let end = at;
      while (end < bytes.byteLength && bytes[end] === 0) end++;
      if (end - at >= minimum) this.#holes.push({ offset: at, length: end - at, kind });
      at = end;
    }
  }

  protected override readAt(offset: number, into: Uint8Array): Promise<void> {
    this.rangesRead.push({ offset, length: into.byteLength });
    return super.readAt(offset, into);
  }

  override async *extents(range?: ByteRange): AsyncIterable<Extent> {
    const { offset, length } = clampRange(this, range);
    const end = offset + length;
    let at = offset;
    for (const hole of this.#holes) {
      const holeEnd = hole.offset + hole.length;
      if (holeEnd <= at) continue;
      if (hole.offset >= end) break;
      if (hole.offset > at) yield { offset: at, length: hole.offset - at, kind: 'data' };
      const stop = Math.min(holeEnd, end);
      yield {
        offset: Math.max(at, hole.offset),
        length: stop - Math.max(at, hole.offset),
        kind: hole.kind,
      };
      at = stop;
    }
    if (at < end) yield { offset: at, length: end - at, kind: 'data' };
  }
}

describe('convertToQcow2 from an opened BlockDevice matches qemu-img convert of the same bytes', () => {
  it('a FileDevice over a raw file, left open for the caller', async () => {
    const input = await scatteredRaw();
    const device = await FileDevice.open(input);
    try {
      for (const clusterSize of [4096, 65536]) {
        await expectSameAsQemu(input, { clusterSize }, device);
        await expectSameAsQemu(input, { clusterSize, compress: true }, device);
      }
      expect((await device.read(device.size - 3000, 3000)).equals(seededBytes(3000, 99))).toBe(
        true,
      );
    } finally {
      await device.close();
    }
  });

  it('a MemoryDevice holding the guest bytes (no holes reported)', async () => {
    const input = await scatteredRaw();
    const device = new MemoryDevice(await readFile(input), { readOnly: true });
    await expectSameAsQemu(input, {}, device);
    await expectSameAsQemu(input, { clusterSize: 512, compress: true }, device);
    const odd = temp.file('odd-device.raw');
    await writeFile(odd, seededBytes(1_000_123, 6));
    await expectSameAsQemu(odd, { clusterSize: 4096 }, new MemoryDevice(await readFile(odd)));
  });

  it('a device reporting unaligned zero and unallocated runs through extents()', async () => {
    const input = await scatteredRaw();
    const bytes = await readFile(input);
    for (const kind of ['zero', 'unallocated'] as const) {
      const device = new HoleReportingDevice(bytes, kind);
      await expectSameAsQemu(input, { clusterSize: 4096 }, device);
      // The holes were skipped, not read.
      const read = device.rangesRead.reduce((sum, range) => sum + range.length, 0);
      expect(read).toBeLessThan(bytes.byteLength / 2);
      await expectSameAsQemu(input, { compress: true }, new HoleReportingDevice(bytes, kind));
    }
  });

  it('an opened Qcow2Image, reported as qcow2 input', async () => {
    const input = await qemuImage('read-mixed', { size: '64M', commands: MIXED_WRITES });
    const image = await openQcow2(input);
    try {
      await expectSameAsQemu(input, { clusterSize: 4096 }, image);
      await expectSameAsQemu(input, { compress: true }, image);
      const result = await convertToQcow2(image, temp.file('from-image.qcow2'), { sync: false });
      expect(result.inputFormat).toBe('qcow2');
      expect(image.closed).toBe(false);
    } finally {
      await image.close();
    }
  });

  it('refuses the options that choose how a path is opened', async () => {
    const device = new MemoryDevice(4096);
    const out = temp.file('refused-device.qcow2');
    for (const options of [{ format: 'raw' as const }, { snapshot: 's1' }]) {
      await expect(convertToQcow2(device, out, options)).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        path: 'memory',
      });
    }
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial`)).toBe(false);
    const result = await convertToQcow2(device, out, { sync: false });
    expect(result).toMatchObject({ inputFormat: 'raw', virtualSize: 4096, bytesWritten: 0 });
  });
});

describe('compressed clusters at the size limit', () => {
  it("a deflate failure is a typed COMPRESS_FAILED naming zlib's status", () => {
    // pako reports a failure through `err`; -2 is zlib's Z_STREAM_ERROR.
    class FailingDeflate {
      err = -2;
      result = new Uint8Array(0);
      push(): boolean {
        return false;
      }
    }
    const outcome = deflateWith(FailingDeflate, new Uint8Array(4096));
    expect(outcome).toEqual({ status: -2, compressed: undefined });
    let thrown: unknown;
    try {
      compressedOrThrow(outcome);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Qcow2Error);
    expect(thrown).toMatchObject({
      code: 'COMPRESS_FAILED',
      structure: 'compressed cluster',
      message: expect.stringMatching(/zlib status -2/),
    });
  });

  it('a cluster deflating to cluster_size - 1 bytes is stored as it is, one byte less compressed', async () => {
    for (const clusterSize of [4096, 65536]) {
      const [exact, oneLess] = boundaryClusters(clusterSize) as [Buffer, Buffer];
      expect(deflateCluster(exact)).toBeUndefined();
      expect(deflateCluster(oneLess)?.byteLength).toBe(clusterSize - 2);
      const input = temp.file(`boundary-${clusterSize}.raw`);
      await writeFile(input, Buffer.concat([exact, oneLess, oneLess, exact]));
      await expectSameAsQemu(input, { clusterSize, compress: true });
    }
  });
});

describe('convertToQcow2 output safety', () => {
  it('aborts cleanly: no output and no partial file', async () => {
    const controller = new AbortController();
    const out = temp.file('aborted.qcow2');
    const conversion = convertToQcow2(await scatteredRaw(), out, {
      signal: controller.signal,
      onProgress: () => controller.abort(new Error('test')),
    });
    await expect(conversion).rejects.toMatchObject({ code: 'ABORTED' });
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial`)).toBe(false);
  });

  it('refuses bad cluster sizes and existing outputs with typed errors', async () => {
    const input = await scatteredRaw();
    const out = temp.file('refused.qcow2');
    await expect(convertToQcow2(input, out, { clusterSize: 3000 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(convertToQcow2(input, out, { clusterSize: 4 << 20 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await writeFile(out, 'keep me');
    await expect(convertToQcow2(input, out)).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await readFile(out, 'utf8')).toBe('keep me');
    expect(existsSync(`${out}.partial`)).toBe(false);
  });

  it('reports progress up to the virtual size', async () => {
    const input = await scatteredRaw();
    let last = { done: 0, total: -1 };
    const out = temp.file('progress.qcow2');
    const result = await convertToQcow2(input, out, {
      sync: false,
      onProgress: (event) => {
        last = event;
      },
    });
    expect(last.done).toBe(last.total);
    expect(last.total).toBe(result.virtualSize);
    expect(result.inputFormat).toBe('raw');
    expect(result.bytesWritten).toBeGreaterThan(0);
    expect(result.fileSize).toBe((await stat(out)).size);
    // The facts every conversion reports (ConvertResult), then qcow2's own.
    expect(Object.keys(result).sort()).toEqual([
      'bytesRead',
      'bytesWritten',
      'fileSize',
      'inputFormat',
      'virtualSize',
    ]);
  });
});
