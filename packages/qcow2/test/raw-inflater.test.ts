import zlib from 'node:zlib';
import { seededBytes } from '@x/test-utils';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openRawInflater, openZstdDecoder } from '../src/compression/raw-inflater.js';

const clusterSize = 64 << 10;

/** What the decoder did before: zlib.inflateRawSync, bounded by the cluster. */
function reference(input: Uint8Array, size: number): Buffer | 'error' | 'too large' {
  try {
    return zlib.inflateRawSync(input, {
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
      maxOutputLength: size,
      chunkSize: size + 1024,
    });
  } catch (error) {
    return (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' ? 'too large' : 'error';
  }
}

describe('openRawInflater (one reused raw-inflate stream per thread)', () => {
  const inflateInto = openRawInflater(zlib);
  if (!inflateInto) throw new Error(`node:zlib's handle is not usable on ${process.version}`);
  const cluster = Buffer.concat([
    seededBytes(clusterSize / 2, 1),
    Buffer.alloc(clusterSize / 2, 'qcow2 '),
  ]);
  const frame = zlib.deflateRawSync(cluster);

  it('inflates into place, padded or followed by other bytes, and is reused after failures', () => {
    const out = Buffer.alloc(clusterSize * 3, 0x5a);
    // Padding to the sector, then the next cluster's bytes, as in an image.
    const padded = Buffer.concat([frame, Buffer.alloc(300), zlib.deflateRawSync(cluster)]);
    expect(inflateInto(padded, out, clusterSize, clusterSize)).toBeUndefined();
    expect(out.subarray(clusterSize, 2 * clusterSize).equals(cluster)).toBe(true);
    // Nothing is written outside the cluster.
    expect(out.subarray(0, clusterSize).every((byte) => byte === 0x5a)).toBe(true);
    expect(out.subarray(2 * clusterSize).every((byte) => byte === 0x5a)).toBe(true);

    const damaged = Buffer.from(frame);
    damaged.fill(0xff, 0, 8);
    expect(inflateInto(damaged, out, 0, clusterSize)).toMatch(/invalid/);
    expect(inflateInto(frame.subarray(0, 100), out, 0, clusterSize)).toMatch(
      /^it inflates to \d+ bytes, not 65536$/,
    );
    const twice = zlib.deflateRawSync(Buffer.concat([cluster, cluster]));
    expect(inflateInto(twice, out, 0, clusterSize)).toBe('it inflates to more than one cluster');
    // The stream is reset for the next cluster: failures leave nothing behind.
    out.fill(0);
    expect(inflateInto(frame, out, 0, clusterSize)).toBeUndefined();
    expect(out.subarray(0, clusterSize).equals(cluster)).toBe(true);
  });

  it('accepts and refuses exactly what zlib.inflateRawSync did (property)', () => {
    const size = 4096;
    const out = Buffer.alloc(size);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 * size }),
        fc.integer({ min: 0, max: 1000 }),
        fc.option(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { nil: undefined }),
        fc.nat(),
        (length, cut, poke, seed) => {
          const data = Buffer.concat([seededBytes(length >> 3, seed), Buffer.alloc(length)]);
          const input = Buffer.from(zlib.deflateRawSync(data.subarray(0, length)));
          const used = input.subarray(0, Math.max(0, input.byteLength - (cut % 8)));
          if (poke && used.byteLength > 0) used[poke[0] % used.byteLength] = poke[1];
          const expected = reference(used, size);
          const detail = inflateInto(used, out, 0, size);
          if (Buffer.isBuffer(expected) && expected.byteLength === size) {
            expect(detail).toBeUndefined();
            expect(out.equals(expected)).toBe(true);
          } else {
            expect(detail).toEqual(expect.any(String));
            if (expected === 'too large') expect(detail).toMatch(/more than one cluster/);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('is undefined where node:zlib has no usable handle (callers use inflateRawSync)', () => {
    const without = { ...zlib, createInflateRaw: () => ({}) } as unknown as typeof zlib;
    expect(openRawInflater(without)).toBeUndefined();
    const otherState = {
      ...zlib,
      createInflateRaw: () => ({
        _handle: { reset() {}, writeSync() {} },
        _writeState: new Uint32Array(3),
      }),
    } as unknown as typeof zlib;
    expect(openRawInflater(otherState)).toBeUndefined();
  });
});

// Node 20 has no zstd in node:zlib; tools/demo's node-versions test runs this file on
// Node 22 and 24 too, where the handle is there and every case below runs.
const zstdZlib = zlib as unknown as {
  zstdCompressSync?: (data: Uint8Array) => Buffer;
  createZstdDecompress?: unknown;
};
describe(`openZstdDecoder (one reused zstd handle per thread, Node ${process.version})`, () => {
  const decodeInto = openZstdDecoder(zlib);
  const compress = zstdZlib.zstdCompressSync;

  it('is undefined exactly where node:zlib has no zstd', () => {
    expect(decodeInto === undefined).toBe(typeof zstdZlib.createZstdDecompress !== 'function');
    expect(decodeInto === undefined).toBe(compress === undefined);
  });

  it('decodes one frame into place and is reused after failures', () => {
    if (!decodeInto || !compress) return; // Node < 22.15: the case above covers it
    const cluster = Buffer.concat([
      seededBytes(clusterSize / 2, 2),
      Buffer.alloc(clusterSize / 2, 'zstd '),
    ]);
    const frame = compress(cluster);
    const out = Buffer.alloc(clusterSize * 3, 0x5a);
    expect(decodeInto(frame, out, clusterSize, clusterSize)).toBeUndefined();
    expect(out.subarray(clusterSize, 2 * clusterSize).equals(cluster)).toBe(true);
    expect(out.subarray(0, clusterSize).every((byte) => byte === 0x5a)).toBe(true);
    expect(out.subarray(2 * clusterSize).every((byte) => byte === 0x5a)).toBe(true);

    const damaged = Buffer.from(frame);
    damaged.fill(0xff, 6, 40);
    expect(decodeInto(damaged, out, 0, clusterSize)).toEqual(expect.any(String));
    // Node 22's handle keeps its error after reset(): the decoder replaces it.
    out.fill(0);
    expect(decodeInto(frame, out, 0, clusterSize)).toBeUndefined();
    expect(out.subarray(0, clusterSize).equals(cluster)).toBe(true);
    expect(decodeInto(frame.subarray(0, frame.byteLength >> 1), out, 0, clusterSize)).toMatch(
      /^it decompresses to \d+ bytes, not 65536$/,
    );
    const twice = compress(Buffer.concat([cluster, cluster]));
    expect(decodeInto(twice, out, 0, clusterSize)).toBe('it decompresses to more than one cluster');
    out.fill(0);
    expect(decodeInto(frame, out, 0, clusterSize)).toBeUndefined();
    expect(out.subarray(0, clusterSize).equals(cluster)).toBe(true);
  });
});
