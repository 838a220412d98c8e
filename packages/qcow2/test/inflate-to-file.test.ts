import { copyFile, readFile, truncate, writeFile } from 'node:fs/promises';
import type { WorkerOptions } from 'node:worker_threads';
import { deflateRawSync } from 'node:zlib';
import { BlockIoError, createOutputFile, FileDevice, SliceDevice } from '@x/blockio';
import { filesEqual, makeTempDir, readU64BE, seededBytes } from '@x/test-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { CompressedFileCopier } from '../src/compression/compressed-to-file.js';
import { InflatePool, liveInflateWorkers } from '../src/compression/inflate-pool.js';
import { runFileJob } from '../src/compression/inflate-to-file.js';
import type { CompressedPiece } from '../src/compression/ordered-inflater.js';
import { copyQcow2Clusters, openQcow2, Qcow2Error } from '../src/index.js';
import type { SyncFileIo } from '../src/sync-file-io.js';
import { qemuImage, qemuImg } from './support/qemu-fixtures.js';

const temp = await makeTempDir('qcow2-inflate-to-file-');
afterAll(() => temp.remove());

const clusterSize = 64 << 10;
/** Cluster i: compressible data, except every third one (with `zeros`), which is all zeros. */
const cluster = (index: number, zeros = true) =>
  zeros && index % 3 === 2
    ? Buffer.alloc(clusterSize)
    : Buffer.concat([seededBytes(clusterSize / 2, index), Buffer.alloc(clusterSize / 2, index)]);

/**
 * `count` deflated clusters back to back in sector-rounded spans (as qemu-img
 * writes them), for guest clusters 0, 1, 2, … except that cluster 5 is skipped
 * (a guest gap). The expected raw output, and the pieces in guest order.
 */
function framesImage(count: number, zeros = true) {
  const parts: Buffer[] = [];
  const pieces: CompressedPiece[] = [];
  const guest = Buffer.alloc((count + 1) * clusterSize);
  let host = 0;
  for (let index = 0; index < count; index++) {
    const at = (index >= 5 ? index + 1 : index) * clusterSize;
    const data = cluster(index, zeros);
    const frame = deflateRawSync(data);
    const length = Math.ceil(frame.byteLength / 512) * 512;
    parts.push(frame, Buffer.alloc(length - frame.byteLength));
    pieces.push({
      clusterOffset: at,
      offset: at,
      length: clusterSize,
      hostOffset: host,
      hostLength: length,
    });
    data.copy(guest, at);
    host += length;
  }
  return { file: Buffer.concat(parts), pieces, guest };
}

function items(pieces: readonly CompressedPiece[]): Float64Array {
  return Float64Array.from(
    pieces.flatMap((piece) => [
      piece.hostOffset,
      piece.hostLength,
      piece.clusterOffset,
      piece.offset,
      piece.length,
    ]),
  );
}

const zlibDecode = (() => {
  const zlib = process.getBuiltinModule('node:zlib');
  return (input: Uint8Array, out: Uint8Array, at: number) => {
    let inflated: Buffer;
    try {
      inflated = zlib.inflateRawSync(input, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } catch (error) {
      return (error as Error).message;
    }
    if (inflated.byteLength !== clusterSize) return `${inflated.byteLength} bytes`;
    out.set(inflated, at);
    return undefined;
  };
})();

/** An in-memory "file system" for runFileJob: fd 3 is the input, fd 4 the output. */
function memoryIo(input: Buffer, outputSize: number) {
  const output = Buffer.alloc(outputSize);
  const writes: Array<[number, number]> = [];
  const reads: Array<[number, number]> = [];
  const io: SyncFileIo = {
    readSync(fd, buffer, offset, length, position) {
      expect(fd).toBe(3);
      reads.push([position, length]);
      const got = input.subarray(position, position + length);
      buffer.set(got, offset);
      return got.byteLength;
    },
    writeSync(fd, buffer, offset, length, position) {
      expect(fd).toBe(4);
      writes.push([position, length]);
      output.set(buffer.subarray(offset, offset + length), position);
      return length;
    },
  };
  return { io, output, writes, reads };
}

describe('runFileJob', () => {
  it('reads pieces that lie together at once, skips zero clusters, writes guest runs at once', () => {
    const { file, pieces, guest } = framesImage(9);
    const { io, output, writes, reads } = memoryIo(file, guest.byteLength);
    const result = runFileJob(
      io,
      zlibDecode,
      {},
      {
        inFd: 3,
        outFd: 4,
        clusterSize,
        items: items(pieces),
      },
    );
    expect(result).toEqual({ guestBytes: 9 * clusterSize, bytesWritten: 6 * clusterSize });
    expect(output.equals(guest)).toBe(true);
    expect(reads).toEqual([[0, file.byteLength]]);
    // Clusters 2, 5 and 8 are zeros; 6 and 7 are at guest clusters 7 and 8 (5 is a gap).
    const c = clusterSize;
    expect(writes).toEqual([
      [0, 2 * c],
      [3 * c, 2 * c],
      [7 * c, 2 * c],
    ]);
  });

  it('writes are cut at 1 MiB boundaries (no write fills a 2 MiB-aligned range)', () => {
    const { file, pieces, guest } = framesImage(20, false);
    const { io, output, writes } = memoryIo(file, guest.byteLength);
    runFileJob(io, zlibDecode, {}, { inFd: 3, outFd: 4, clusterSize, items: items(pieces) });
    expect(output.equals(guest)).toBe(true);
    const c = clusterSize;
    // Guest clusters 0-4, then 6-20 (5 is a gap), cut at 1 MiB = cluster 16.
    expect(writes).toEqual([
      [0, 5 * c],
      [6 * c, 10 * c],
      [16 * c, 5 * c],
    ]);
  });

  it('parts of clusters land at their guest offsets', () => {
    const { file, pieces, guest } = framesImage(2);
    const partial = pieces.map((piece, index) => ({
      ...piece,
      offset: piece.clusterOffset + (index === 0 ? 1000 : 0),
      length: index === 0 ? clusterSize - 1000 : 5000,
    }));
    const { io, output, writes } = memoryIo(file, guest.byteLength);
    const result = runFileJob(
      io,
      zlibDecode,
      {},
      {
        inFd: 3,
        outFd: 4,
        clusterSize,
        items: items(partial),
      },
    );
    expect(result).toEqual({
      guestBytes: clusterSize - 1000 + 5000,
      bytesWritten: clusterSize + 4000,
    });
    // One write: the end of cluster 0 and the start of cluster 1 are guest-contiguous.
    expect(writes).toEqual([[1000, clusterSize + 4000]]);
    expect(
      output.subarray(1000, clusterSize + 5000).equals(guest.subarray(1000, clusterSize + 5000)),
    ).toBe(true);
    expect(output.subarray(0, 1000).every((byte) => byte === 0)).toBe(true);
  });

  it('a read error, a short read, a bad cluster and a write error are reported, nothing written after', () => {
    const { file, pieces, guest } = framesImage(4);
    const job = { inFd: 3, outFd: 4, clusterSize, items: items(pieces) };
    const failing = (patch: Partial<SyncFileIo>) => {
      const memory = memoryIo(file, guest.byteLength);
      return { ...memory, io: { ...memory.io, ...patch } };
    };
    const eio = Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
    const readFails = failing({
      readSync() {
        throw eio;
      },
    });
    expect(runFileJob(readFails.io, zlibDecode, {}, job)).toMatchObject({
      failure: { kind: 'read', code: 'EIO', offset: 0, piece: 0 },
    });
    expect(readFails.writes).toEqual([]);
    const short = memoryIo(
      file.subarray(0, (pieces[2] as CompressedPiece).hostOffset + 10),
      guest.byteLength,
    );
    expect(runFileJob(short.io, zlibDecode, {}, job)).toMatchObject({
      failure: { kind: 'short-read', offset: (pieces[2] as CompressedPiece).hostOffset + 10 },
    });
    expect(short.writes).toEqual([]);
    const corrupt = Buffer.from(file);
    corrupt.fill(
      0xfe,
      (pieces[3] as CompressedPiece).hostOffset,
      (pieces[3] as CompressedPiece).hostOffset + 16,
    );
    const bad = memoryIo(corrupt, guest.byteLength);
    expect(runFileJob(bad.io, zlibDecode, {}, job)).toMatchObject({
      failure: { kind: 'decode', piece: 3, offset: (pieces[3] as CompressedPiece).hostOffset },
    });
    expect(bad.writes).toEqual([]);
    const writeFails = failing({
      writeSync() {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), {
          code: 'ENOSPC',
        });
      },
    });
    expect(runFileJob(writeFails.io, zlibDecode, {}, job)).toMatchObject({
      failure: { kind: 'write', code: 'ENOSPC', offset: 0, piece: 0 },
    });
  });
});

describe('CompressedFileCopier', () => {
  async function setUp(name: string, count: number) {
    const { file, pieces, guest } = framesImage(count);
    const inputPath = temp.file(`${name}.in`);
    await writeFile(inputPath, file);
    const input = await FileDevice.open(inputPath);
    const output = await createOutputFile(temp.file(`${name}.raw`), {
      size: guest.byteLength,
      sync: false,
    });
    return { input, output, pieces, guest };
  }

  it.each([0, 2])(
    'with %i workers: the output is the clusters at their guest offsets',
    async (workers) => {
      const { input, output, pieces, guest } = await setUp(`copier-${workers}`, 70);
      const pool = new InflatePool('zlib', clusterSize, workers);
      try {
        // Jobs of 3 clusters, 2 in flight: many jobs, the last one short.
        const copier = new CompressedFileCopier(input, output.device, pool, {
          batchBytes: 3 * clusterSize,
          depth: 2,
        });
        for (const piece of pieces) await copier.add(piece);
        await copier.finish();
        expect(copier.bytesRead).toBe(70 * clusterSize);
        expect(copier.bytesWritten).toBe(
          pieces.filter((_, index) => index % 3 !== 2).length * clusterSize,
        );
        await output.commit();
        expect((await readFile(output.path)).equals(guest)).toBe(true);
      } finally {
        await pool.close();
        await input.close();
      }
      expect(liveInflateWorkers()).toBe(0);
    },
  );

  it('an abort stops it before the next job; the jobs in flight settle', async () => {
    const { input, output, pieces } = await setUp('copier-abort', 40);
    const pool = new InflatePool('zlib', clusterSize, 2);
    const controller = new AbortController();
    try {
      const copier = new CompressedFileCopier(input, output.device, pool, {
        batchBytes: 2 * clusterSize,
        signal: controller.signal,
      });
      let added = 0;
      const error = await (async () => {
        for (const piece of pieces) {
          if (++added === 7) controller.abort(new Error('interrupted'));
          await copier.add(piece);
        }
        await copier.finish();
      })().catch((caught: unknown) => caught);
      await copier.abandon();
      expect(error).toMatchObject({ code: 'ABORTED', path: input.name });
      // Three jobs of two went out before the abort; the fourth was refused.
      expect(added).toBe(8);
    } finally {
      await output.abort();
      await pool.close();
      await input.close();
    }
    expect(liveInflateWorkers()).toBe(0);
  });

  it('a corrupt cluster names the file, its offset and guest offset; a failed write names the output', async () => {
    const { input, output, pieces } = await setUp('copier-bad', 20);
    const bad = pieces[13] as CompressedPiece;
    await input.close();
    const bytes = await readFile(input.name);
    bytes.fill(0xfe, bad.hostOffset, bad.hostOffset + 16);
    await writeFile(input.name, bytes);
    const reopened = await FileDevice.open(input.name);
    const pool = new InflatePool('zlib', clusterSize, 2);
    const run = async (target: FileDevice, list: readonly CompressedPiece[]) => {
      const copier = new CompressedFileCopier(reopened, target, pool, {
        batchBytes: 4 * clusterSize,
      });
      const error = await (async () => {
        for (const piece of list) await copier.add(piece);
        await copier.finish();
      })().catch((caught: unknown) => caught);
      await copier.abandon();
      return error;
    };
    try {
      const error = await run(output.device, pieces);
      expect(error).toBeInstanceOf(Qcow2Error);
      expect(error).toMatchObject({
        code: 'DECOMPRESS_FAILED',
        path: input.name,
        offset: bad.hostOffset,
        structure: 'compressed cluster',
      });
      expect((error as Error).message).toContain(
        `guest offset 0x${bad.clusterOffset.toString(16)}`,
      );
      // An output open for reading only: the worker's pwrite fails (EBADF).
      const readOnly = await FileDevice.open(output.partialPath);
      try {
        const writeError = await run(readOnly, pieces.slice(0, 4));
        expect(writeError).toBeInstanceOf(BlockIoError);
        expect(writeError).toMatchObject({ path: output.partialPath, offset: 0 });
        expect((writeError as Error).message).toMatch(/^cannot write \d+ bytes/);
      } finally {
        await readOnly.close();
      }
    } finally {
      await output.abort();
      await pool.close();
      await reopened.close();
    }
    expect(liveInflateWorkers()).toBe(0);
  });

  it('a worker that dies during a job fails it with a typed error once no worker runs', async () => {
    const { input, output, pieces } = await setUp('copier-crash', 12);
    const threads = process.getBuiltinModule('node:worker_threads');
    const Original = threads.Worker;
    threads.Worker = class extends Original {
      constructor(source: string | URL, options?: WorkerOptions) {
        // The second job a worker gets ends its thread.
        const patched = String(source).replace(
          'if (file) {',
          'if (file) { globalThis.jobs = (globalThis.jobs ?? 0) + 1; if (globalThis.jobs > 1) process.exit(7);',
        );
        super(patched, options);
      }
    } as typeof Original;
    const pool = new InflatePool('zlib', clusterSize, 2);
    try {
      const copier = new CompressedFileCopier(input, output.device, pool, {
        batchBytes: clusterSize,
        depth: 4,
      });
      const error = await (async () => {
        for (const piece of pieces) await copier.add(piece);
        await copier.finish();
      })().catch((caught: unknown) => caught);
      await copier.abandon();
      expect(error).toBeInstanceOf(Qcow2Error);
      expect(error).toMatchObject({ code: 'DECOMPRESS_FAILED', path: input.name });
      expect((error as Error).message).toMatch(/an inflate worker exited \(code 7\)/);
    } finally {
      threads.Worker = Original;
      await output.abort();
      await pool.close();
      await input.close();
    }
    expect(liveInflateWorkers()).toBe(0);
  });
});

describe('copyQcow2Clusters with the inflate workers doing the I/O', () => {
  const cutImage = () =>
    qemuImage('inflate-to-file-cut', {
      size: '8M',
      commands: ['write -c -P 0x11 0 2M', 'write -c -P 0x22 4M 2M'],
    });

  it('into a raw file and into a slice of one (the main thread inflater) the output equals qemu-img', async () => {
    const source = await cutImage();
    const theirs = temp.file('whole-qemu.raw');
    await qemuImg('convert', '-O', 'raw', source, theirs);
    const image = await openQcow2(source);
    try {
      for (const slice of [false, true]) {
        const output = await createOutputFile(temp.file(`whole-${slice}.raw`), {
          size: image.size,
          sync: false,
        });
        // A SliceDevice is not a FileDevice: OrderedInflater feeds the main thread's writes.
        const target = slice ? new SliceDevice(output.device, 0) : output.device;
        const result = await copyQcow2Clusters(image, target);
        expect(result).toMatchObject({ bytesRead: 4 << 20, bytesWritten: 4 << 20 });
        await output.commit();
        expect(await filesEqual(output.path, theirs)).toBe(true);
      }
    } finally {
      await image.close();
    }
    expect(liveInflateWorkers()).toBe(0);
  });

  it('an image file cut short after it was opened is a typed SHORT_READ naming it; no workers left', async () => {
    const source = await cutImage();
    const path = temp.file('cut.qcow2');
    await copyFile(source, path);
    const image = await openQcow2(path);
    const output = await createOutputFile(temp.file('cut.raw'), { size: image.size, sync: false });
    try {
      // The L2 table sits before the data: cut into cluster 70's compressed bytes.
      const l1 = Number(await readU64BE(path, 40));
      const l2 = Number((await readU64BE(path, l1)) & ((1n << 56n) - 512n));
      const entry = await readU64BE(path, l2 + 70 * 8);
      const cut = Number(entry & ((1n << 54n) - 1n)) + 10;
      expect(cut).toBeGreaterThan(l2);
      await truncate(path, cut);
      const error = await copyQcow2Clusters(image, output.device).catch(
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(BlockIoError);
      expect(error).toMatchObject({ code: 'SHORT_READ', path });
      expect((error as Error).message).toMatch(/did it shrink while being read\?/);
    } finally {
      await output.abort();
      await image.close();
    }
    expect(liveInflateWorkers()).toBe(0);
  });
});
