import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { MemoryDevice } from '@x/blockio';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GATHER, RegionWriter } from '../src/assemble/region-writer.js';

const PIECE = 64 * 1024;

/** A memory device that records every write. */
class RecordingDevice extends MemoryDevice {
  readonly writes: Array<{ offset: number; length: number }> = [];
  override async write(offset: number, data: Uint8Array): Promise<void> {
    this.writes.push({ offset, length: data.byteLength });
    await super.write(offset, data);
  }
}

/** An object of `pieces` 64 KiB pieces, each all zero or not, and maybe a short tail. */
const objectArbitrary = fc
  .record({
    pieces: fc.array(fc.boolean(), { minLength: 0, maxLength: 40 }),
    tail: fc.nat({ max: PIECE - 1 }),
    tailZero: fc.boolean(),
    seed: fc.nat(),
  })
  .map(({ pieces, tail, tailZero, seed }) => {
    const bytes = Buffer.alloc(pieces.length * PIECE + tail);
    pieces.forEach((zero, k) => {
      if (!zero) bytes.fill(((seed + k) % 255) + 1, k * PIECE, k * PIECE + PIECE - 7);
    });
    if (!tailZero && tail > 0) bytes[pieces.length * PIECE + tail - 1] = 9;
    return bytes;
  });

describe('RegionWriter', () => {
  it('writes every region exactly, cut at its length, leaving all-zero aligned pieces out, with the checksum asked for', async () => {
    await fc.assert(
      fc.asyncProperty(
        objectArbitrary,
        fc.array(fc.integer({ min: 1, max: 200_000 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat({ max: 3 * 1024 * 1024 }), { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        async (object, chunkSizes, lengths, crcAndReused) => {
          const devices = lengths.map((length) => new RecordingDevice(length + 4096));
          const writer = new RegionWriter(
            devices.map((device, k) => ({
              state: k,
              index: 0,
              device,
              offset: 4096,
              length: lengths[k] as number,
            })),
            // A reused gather buffer holds an earlier object's bytes: none may leak out.
            crcAndReused ? Buffer.alloc(GATHER, 0xee) : undefined,
            crcAndReused ? 'crc32' : 'sha1',
          );
          for (let at = 0, k = 0; at < object.byteLength; k++) {
            const size = chunkSizes[k % chunkSizes.length] as number;
            await writer.write(object.subarray(at, at + size));
            at += size;
          }
          await writer.end();
          expect(writer.received).toBe(object.byteLength);
          expect(writer.checksum).toBe(
            crcAndReused
              ? crc32(object).toString(16).padStart(8, '0')
              : createHash('sha1').update(object).digest('hex'),
          );
          for (const [k, device] of devices.entries()) {
            const length = lengths[k] as number;
            const expected = Buffer.alloc(length);
            object.copy(expected, 0, 0, Math.min(length, object.byteLength));
            expect(Buffer.from(await device.read(4096, length)).equals(expected)).toBe(true);
            for (const write of device.writes) {
              expect(write.offset + write.length).toBeLessThanOrEqual(4096 + length);
              // Every aligned piece a write covers holds data within the longest region
              // (a shorter region may get the zero start of a piece a longer one needs).
              for (
                let at = write.offset - 4096;
                at < write.offset - 4096 + write.length;
                at += PIECE
              ) {
                const piece = object.subarray(
                  at,
                  Math.min(at + PIECE, object.byteLength, Math.max(...lengths)),
                );
                expect(piece.some((byte) => byte !== 0)).toBe(true);
              }
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
