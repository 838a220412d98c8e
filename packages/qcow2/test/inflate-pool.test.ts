import { existsSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { BlockIoError, MemoryDevice } from '@x/blockio';
import {
  filesEqual,
  makeTempDir,
  pokeBytes,
  readU64BE,
  runPeerOk,
  seededBytes,
} from '@x/test-utils';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  type CompressionType,
  type DecodeTools,
  decodeClusterInto,
} from '../src/compression/cluster-decoder.js';
import { InflatePool, liveInflateWorkers } from '../src/compression/inflate-pool.js';
import { type CompressedPiece, OrderedInflater } from '../src/compression/ordered-inflater.js';
import { loadWasmZstd } from '../src/compression/wasm-zstd.js';
import { parseZstdFrame } from '../src/compression/zstd-frame.js';
import {
  convertToQcow2,
  convertToRaw,
  decompressCluster,
  openQcow2,
  Qcow2Error,
} from '../src/index.js';
import { qemuImage, qemuImg } from './support/qemu-fixtures.js';

const temp = await makeTempDir('qcow2-inflate-');
afterAll(() => temp.remove());

/**
 * Compressed clusters (enough for many batches of the ordered inflater, some
 * all zeros, one at the image's short last cluster), plain data, zero and
 * unallocated clusters, interleaved; virtual size not a whole number of clusters.
 */
function mixedImage(type: CompressionType) {
  return qemuImage(`inflate-mixed-${type}`, {
    size: `${24 * 1024 + 8}k`,
    options: `compression_type=${type}`,
    commands: [
      'write -c -P 0x11 0 4M',
      'write -P 0x22 4M 1M',
      'write -c -P 0 5M 256k',
      'write -z 6M 512k',
      'write -c -P 0x33 7M 3M',
      'write -P 0x44 7M 64k',
      'write -c -P 0x55 16M 2M',
      'write -c -P 0x66 24M 8k',
    ],
  });
}

/** Host offset of the compressed data of the cluster at guest offset 0 (L1[0], L2[index]). */
async function compressedDataOffset(path: string, index: number): Promise<number> {
  const l1 = Number(await readU64BE(path, 40));
  const l2 = Number((await readU64BE(path, l1)) & ((1n << 56n) - 512n));
  const entry = await readU64BE(path, l2 + index * 8);
  if ((entry & (1n << 62n)) === 0n) throw new Error(`L2[${index}] is not compressed`);
  return Number(entry & ((1n << 54n) - 1n));
}

async function expectRawSameAsQemu(input: string) {
  const ours = temp.file(`${Math.random().toString(36).slice(2)}-ours.raw`);
  const theirs = `${ours}.qemu`;
  await convertToRaw(input, ours, { backingPolicy: 'allow', sync: false });
  await runPeerOk('qemu-img', ['convert', '-O', 'raw', input, theirs], { cwd: dirname(input) });
  expect(await filesEqual(ours, theirs)).toBe(true);
}

describe.each(['zlib', 'zstd'] as const)('%s-compressed images, inflated on workers', (type) => {
  it('convert -O raw and -O qcow2 are byte-identical to qemu-img (mixed clusters)', async () => {
    const image = await mixedImage(type);
    await expectRawSameAsQemu(image);
    const ours = temp.file(`mixed-${type}-ours.qcow2`);
    const theirs = temp.file(`mixed-${type}-qemu.qcow2`);
    await convertToQcow2(image, ours, { sync: false });
    await qemuImg('convert', '-O', 'qcow2', image, theirs);
    expect(await filesEqual(ours, theirs)).toBe(true);
    expect(liveInflateWorkers()).toBe(0);
  });

  it('a compressed overlay over a compressed backing file equals qemu-img', async () => {
    const base = await mixedImage(type);
    const overlay = temp.file(`overlay-${type}.qcow2`);
    await qemuImg(
      'create',
      '-q',
      '-f',
      'qcow2',
      '-o',
      `compression_type=${type}`,
      '-b',
      base,
      '-F',
      'qcow2',
      overlay,
    );
    await runPeerOk('qemu-io', [
      ...['write -c -P 0x77 2M 1M', 'write -P 0x88 8M 64k', 'write -z 17M 64k'].flatMap((c) => [
        '-c',
        c,
      ]),
      overlay,
    ]);
    await expectRawSameAsQemu(overlay);
    expect(liveInflateWorkers()).toBe(0);
  });

  it('a corrupt cluster on a worker is a typed error naming the file and its offset', async () => {
    const image = temp.file(`corrupt-${type}.qcow2`);
    await copyFile(await mixedImage(type), image);
    // Cluster 40 (guest 2.5 MiB): in the middle of a batch, with batches before it.
    const offset = await compressedDataOffset(image, 40);
    await pokeBytes(image, offset, Buffer.alloc(16, 0xfe));
    const out = temp.file(`corrupt-${type}.raw`);
    const error = await convertToRaw(image, out).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Qcow2Error);
    expect(error).toMatchObject({
      code: 'DECOMPRESS_FAILED',
      path: image,
      offset,
      structure: 'compressed cluster',
    });
    expect((error as Error).message).toContain('guest offset 0x280000');
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial`)).toBe(false);
    expect(liveInflateWorkers()).toBe(0);
  });

  it('an abort during the copy stops it, leaves no output and no workers', async () => {
    const image = await mixedImage(type);
    const controller = new AbortController();
    const out = temp.file(`aborted-${type}.raw`);
    await expect(
      convertToRaw(image, out, {
        signal: controller.signal,
        // Aborted at the first progress report, not a tick later: on a fast machine the
        // rest of the copy could finish within that tick and resolve instead.
        onProgress: () => controller.abort(new Error('interrupted')),
      }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial`)).toBe(false);
    expect(liveInflateWorkers()).toBe(0);
  });

  it('random reads through the image use the pool; closing the image ends its workers', async () => {
    const image = await openQcow2(await mixedImage(type));
    const part = await image.read(7 * (1 << 20) + 100_000, 200_000);
    expect(part.every((byte) => byte === 0x33)).toBe(true);
    expect(liveInflateWorkers()).toBeGreaterThan(0);
    await image.close();
    expect(liveInflateWorkers()).toBe(0);
  });
});

describe('InflatePool', () => {
  const clusterSize = 64 << 10;
  const clusters = [0, 1, 2, 3, 4].map((seed) =>
    // Half random, half repeated: compressible, but not trivially.
    Buffer.concat([seededBytes(clusterSize / 2, seed), Buffer.alloc(clusterSize / 2, seed)]),
  );

  /** Inflates `pieces` in order on a 2-worker pool; the error that stopped it and the clusters that came out before. */
  async function inflateUntilError(
    device: ConstructorParameters<typeof OrderedInflater>[0],
    type: CompressionType,
    pieces: readonly CompressedPiece[],
    options: { batchBytes: number; depth: number },
  ): Promise<{ error: unknown; seen: number[] }> {
    const pool = new InflatePool(type, clusterSize, 2);
    const seen: number[] = [];
    const inflater = new OrderedInflater(
      device,
      pool,
      (offset) => {
        seen.push(offset / clusterSize);
      },
      options,
    );
    const error = await (async () => {
      for (const piece of pieces) await inflater.add(piece);
      await inflater.finish();
    })().catch((caught: unknown) => caught);
    await inflater.abandon();
    await pool.close();
    return { error, seen };
  }

  async function compressed(type: CompressionType): Promise<Buffer[]> {
    const zlib = await import('node:zlib');
    if (type === 'zlib') return clusters.map((cluster) => zlib.deflateRawSync(cluster));
    // Frames from the zstd tool (libzstd), not from the codec under test.
    const { execFileSync } = await import('node:child_process');
    // Frames with and without a declared content size (QEMU's have one; a stream has none).
    return clusters.map((cluster, index) =>
      execFileSync(
        'zstd',
        ['-q', '-c', ...(index % 2 ? [`--stream-size=${cluster.byteLength}`] : [])],
        {
          input: cluster,
        },
      ),
    );
  }

  it.each([
    ['zlib', 2],
    ['zlib', 0],
    ['zstd', 2],
    ['zstd', 0],
  ] as const)(
    '%s with %i workers: clusters come back in order, inputs packed in one buffer',
    async (type, size) => {
      const frames = await compressed(type);
      const pool = new InflatePool(type, clusterSize, size);
      try {
        const total = frames.reduce((sum, frame) => sum + frame.byteLength, 0);
        const input = pool.buffer(total);
        const spans: number[] = [];
        let at = 0;
        for (const frame of frames) {
          input.set(frame, at);
          spans.push(at, frame.byteLength);
          at += frame.byteLength;
        }
        const wheres = frames.map((_, index) => ({ path: 'x', offset: index, guestOffset: 0 }));
        const out = await pool.inflate(input, spans, wheres);
        expect(Buffer.compare(out, Buffer.concat(clusters))).toBe(0);
        pool.release(out);
        // A reused output buffer is overwritten completely.
        const again = await pool.inflateOne(frames[3] as Buffer, wheres[3] as (typeof wheres)[0]);
        expect(Buffer.compare(again, clusters[3] as Buffer)).toBe(0);
      } finally {
        await pool.close();
      }
    },
  );

  it('the failing cluster of a batch is named; a closed pool refuses with a typed error', async () => {
    const frames = await compressed('zlib');
    const pool = new InflatePool('zlib', clusterSize, 2);
    const input = Buffer.concat([frames[0] as Buffer, Buffer.alloc(100, 0xff)]);
    const error = await pool
      .inflate(
        input,
        [0, (frames[0] as Buffer).byteLength, (frames[0] as Buffer).byteLength, 100],
        [
          { path: 'a.qcow2', offset: 1000, guestOffset: 0 },
          { path: 'a.qcow2', offset: 2000, guestOffset: 0x10000 },
        ],
      )
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'DECOMPRESS_FAILED', path: 'a.qcow2', offset: 2000 });
    await pool.close();
    await expect(
      pool.inflateOne(frames[0] as Buffer, { path: 'a.qcow2', offset: 0, guestOffset: 0 }),
    ).rejects.toMatchObject({ code: 'DECOMPRESS_FAILED', path: 'a.qcow2' });
    expect(liveInflateWorkers()).toBe(0);
  });

  /** The frames laid out back to back in a file-like device, as qemu-img writes them. */
  function framesFile(frames: Buffer[], count: number) {
    const pieces: CompressedPiece[] = [];
    const parts: Buffer[] = [];
    let at = 0;
    for (let index = 0; index < count; index++) {
      const frame = frames[index % frames.length] as Buffer;
      // Sector-rounded spans: the next frame follows the padding.
      const length = Math.ceil(frame.byteLength / 512) * 512;
      parts.push(frame, Buffer.alloc(length - frame.byteLength));
      pieces.push({
        clusterOffset: index * clusterSize,
        offset: index * clusterSize,
        length: clusterSize,
        hostOffset: at,
        hostLength: length,
      });
      at += length;
    }
    return { device: new MemoryDevice(Buffer.concat(parts), { name: 'f.qcow2' }), pieces };
  }

  it.each(['zlib', 'zstd'] as const)(
    '%s: many batches in flight on 2 workers come out in guest order, bounded',
    async (type) => {
      const frames = await compressed(type);
      const { device, pieces } = framesFile(frames, 97);
      const pool = new InflatePool(type, clusterSize, 2);
      const seen: number[] = [];
      try {
        // Batches of 1 to 3 clusters (uneven work), 3 in flight.
        for (const batchClusters of [1, 2, 3]) {
          seen.length = 0;
          const inflater = new OrderedInflater(
            device,
            pool,
            (offset, bytes) => {
              const index = offset / clusterSize;
              seen.push(index);
              expect(bytes.equals(clusters[index % clusters.length] as Buffer)).toBe(true);
            },
            { batchBytes: batchClusters * clusterSize, depth: 3 },
          );
          for (const piece of pieces) await inflater.add(piece);
          await inflater.finish();
          expect(seen).toEqual(pieces.map((_, index) => index));
        }
      } finally {
        await pool.close();
      }
      expect(liveInflateWorkers()).toBe(0);
    },
  );

  it.each(['zlib', 'zstd'] as const)(
    '%s: a corrupt cluster in the middle of a batch is the one named; earlier clusters came out',
    async (type) => {
      const frames = await compressed(type);
      const { device, pieces } = framesFile(frames, 40);
      // Cluster 21: the middle of the third batch of 8.
      const bad = pieces[21] as CompressedPiece;
      device.bytes.fill(0xfe, bad.hostOffset, bad.hostOffset + 24);
      const { error, seen } = await inflateUntilError(device, type, pieces, {
        batchBytes: 8 * clusterSize,
        depth: 2,
      });
      expect(error).toBeInstanceOf(Qcow2Error);
      expect(error).toMatchObject({
        code: 'DECOMPRESS_FAILED',
        path: 'f.qcow2',
        offset: bad.hostOffset,
        structure: 'compressed cluster',
      });
      expect((error as Error).message).toContain(
        `guest offset 0x${(21 * clusterSize).toString(16)}`,
      );
      // The batches before it were consumed, in order; nothing of its batch.
      expect(seen).toEqual(Array.from({ length: 16 }, (_, index) => index));
      expect(liveInflateWorkers()).toBe(0);
    },
  );

  it('a read that fails while later batches are in flight is the error; nothing after it is consumed', async () => {
    const frames = await compressed('zlib');
    const { device, pieces } = framesFile(frames, 40);
    const failAt = (pieces[20] as CompressedPiece).hostOffset;
    const failing = new (class extends MemoryDevice {
      override read(offset: number, lengthOrInto: number | Uint8Array): Promise<Buffer> {
        if (
          typeof lengthOrInto !== 'number' &&
          offset <= failAt &&
          failAt < offset + lengthOrInto.byteLength
        ) {
          return Promise.reject(
            new BlockIoError('EIO', 'read failed', { path: 'f.qcow2', offset }),
          );
        }
        return super.read(offset, lengthOrInto as number);
      }
    })(device.bytes, { name: 'f.qcow2' });
    const { error, seen } = await inflateUntilError(failing, 'zlib', pieces, {
      batchBytes: 4 * clusterSize,
      depth: 4,
    });
    expect(error).toMatchObject({ code: 'EIO', message: expect.stringContaining('read failed') });
    // Batches 0-4 (clusters 0-19) came out in order; the failed read's batch did not.
    expect(seen).toEqual(Array.from({ length: 20 }, (_, index) => index));
    expect(liveInflateWorkers()).toBe(0);
  });

  /** Starts the pool's workers with `patch` applied to their source (see workerSource). */
  async function withPatchedWorkers<T>(
    patch: (source: string) => string,
    run: () => Promise<T>,
  ): Promise<T> {
    const threads = process.getBuiltinModule('node:worker_threads');
    const Original = threads.Worker;
    threads.Worker = class extends Original {
      constructor(source: string | URL, options?: WorkerOptions) {
        super(patch(String(source)), options);
      }
    } as typeof Original;
    try {
      return await run();
    } finally {
      threads.Worker = Original;
    }
  }

  it.each([
    [
      'throws',
      "throw new Error('worker fell over');",
      /an inflate worker failed: worker fell over/,
    ],
    ['exits', 'process.exit(7);', /an inflate worker exited \(code 7\)/],
  ])(
    'a worker that %s fails the batches in flight with a typed error (no hang), and what follows',
    async (_, crash, message) => {
      const frames = await compressed('zlib');
      const pool = new InflatePool('zlib', clusterSize, 2);
      const where = (index: number) => ({ path: 'w.qcow2', offset: index, guestOffset: 0 });
      try {
        await withPatchedWorkers(
          // Each worker falls over on its second batch.
          (source) => source.replace('await ready;', `await ready; if (id > 1) { ${crash} }`),
          async () => {
            const first = await Promise.all([
              pool.inflateOne(frames[0] as Buffer, where(0)),
              pool.inflateOne(frames[1] as Buffer, where(1)),
            ]);
            expect(first[1]?.equals(clusters[1] as Buffer)).toBe(true);
            const failed = await Promise.allSettled([
              pool.inflateOne(frames[2] as Buffer, where(2)),
              pool.inflateOne(frames[3] as Buffer, where(3)),
            ]);
            for (const result of failed) {
              expect(result.status).toBe('rejected');
              const reason = (result as PromiseRejectedResult).reason as Qcow2Error;
              expect(reason).toBeInstanceOf(Qcow2Error);
              expect(reason).toMatchObject({ code: 'DECOMPRESS_FAILED', path: 'w.qcow2' });
              expect(reason.message).toMatch(message);
            }
          },
        );
        await expect(pool.inflateOne(frames[0] as Buffer, where(0))).rejects.toMatchObject({
          code: 'DECOMPRESS_FAILED',
        });
      } finally {
        await pool.close();
      }
      expect(liveInflateWorkers()).toBe(0);
    },
  );

  it('decompressCluster (one cluster, no pool) decodes the same frames', async () => {
    for (const type of ['zlib', 'zstd'] as const) {
      const frames = await compressed(type);
      for (const [index, frame] of frames.entries()) {
        const where = { path: 'x', offset: index, guestOffset: 0 };
        const out = await decompressCluster(type, frame, clusterSize, where);
        expect(Buffer.compare(out, clusters[index] as Buffer)).toBe(0);
      }
      await expect(
        decompressCluster(type, Buffer.alloc(64, 0xee), clusterSize, {
          path: 'y',
          offset: 7,
          guestOffset: 0,
        }),
      ).rejects.toMatchObject({ code: 'DECOMPRESS_FAILED', path: 'y', offset: 7 });
    }
  });

  /** Every zstd decoder this Node has: libzstd in WebAssembly always, node:zlib's from 22.15. */
  async function zstdBackends() {
    const zlib = await import('node:zlib');
    const native = (zlib as unknown as { zstdDecompressSync?: DecodeTools['zstdDecompressSync'] })
      .zstdDecompressSync;
    const base = {
      inflateRawSync: zlib.inflateRawSync,
      parseZstdFrame,
      syncFlush: zlib.constants.Z_SYNC_FLUSH,
    };
    const backends: Array<[string, DecodeTools]> = [
      ['wasm', { ...base, zstdDecompressSync: undefined, wasmZstd: await loadWasmZstd() }],
    ];
    if (native)
      backends.push(['node:zlib', { ...base, zstdDecompressSync: native, wasmZstd: undefined }]);
    return backends;
  }

  const out0 = () => Buffer.alloc(clusterSize);

  it('each zstd backend decodes frames with and without a declared size, and refuses bad ones', async () => {
    const frames = await compressed('zstd');
    for (const [name, tools] of await zstdBackends()) {
      const out = Buffer.alloc(clusterSize * 2, 0x5a);
      for (const [index, frame] of frames.entries()) {
        // Followed by other bytes, as the next cluster's data follows in an image.
        const padded = Buffer.concat([frame, Buffer.alloc(700, 0x77)]);
        expect([
          name,
          decodeClusterInto(tools, 'zstd', padded, clusterSize, out, clusterSize),
        ]).toEqual([name, undefined]);
        expect(Buffer.compare(out.subarray(clusterSize), clusters[index] as Buffer)).toBe(0);
      }
      // Output elsewhere in the buffer is untouched.
      expect(out.subarray(0, clusterSize).every((byte) => byte === 0x5a)).toBe(true);
      const damaged = Buffer.from(frames[0] as Buffer);
      damaged.fill(0xff, 12, 60);
      expect(decodeClusterInto(tools, 'zstd', damaged, clusterSize, out, 0)).toEqual(
        expect.any(String),
      );
      const short = (frames[0] as Buffer).subarray(0, (frames[0] as Buffer).byteLength - 4);
      expect(decodeClusterInto(tools, 'zstd', short, clusterSize, out, 0)).toMatch(/truncated/);
    }
    // A WebAssembly heap that cannot grow is a failure detail, not an exception.
    const [, wasm] = (await zstdBackends())[0] as [string, DecodeTools];
    const heapFull = {
      ...wasm,
      wasmZstd: {
        decompressInto: () => {
          throw new Error('libzstd could not allocate 65536 bytes');
        },
      },
    };
    expect(decodeClusterInto(heapFull, 'zstd', frames[0] as Buffer, clusterSize, out0(), 0)).toBe(
      'libzstd could not allocate 65536 bytes',
    );
  });

  it('the decoder refuses output larger than one cluster', async () => {
    const zlib = await import('node:zlib');
    const out = Buffer.alloc(4096);
    const big = zlib.deflateRawSync(Buffer.alloc(8192, 1));
    const { execFileSync } = await import('node:child_process');
    const frame = execFileSync('zstd', ['-q', '-c'], { input: Buffer.alloc(8192, 1) });
    for (const [name, tools] of await zstdBackends()) {
      expect([name, decodeClusterInto(tools, 'zlib', big, 4096, out, 0)]).toEqual([
        name,
        expect.stringMatching(/more than one cluster/),
      ]);
      expect([name, decodeClusterInto(tools, 'zstd', frame, 4096, out, 0)]).toEqual([
        name,
        expect.stringMatching(/more than one cluster/),
      ]);
    }
  });
});

describe('closing a pool', () => {
  // terminate() can stop a worker while it builds its zlib stream, and Node 20 aborts
  // the process when it collects that half-made stream ("close before init"): a pool
  // closed right after it warmed up (a damaged image found at once) must not do that.
  it('asks its workers to stop, even while they start up, without terminate()', async () => {
    const terminate = vi.spyOn(Worker.prototype, 'terminate');
    try {
      for (const type of ['zlib', 'zstd'] as const) {
        const pool = new InflatePool(type, 1 << 16, 2);
        pool.warm();
        expect(liveInflateWorkers()).toBe(2);
        await pool.close();
        expect(liveInflateWorkers()).toBe(0);
      }
      expect(terminate).not.toHaveBeenCalled();
    } finally {
      terminate.mockRestore();
    }
  });
});
