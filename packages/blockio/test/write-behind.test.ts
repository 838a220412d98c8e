import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockIoError, MemoryDevice, WriteBehind } from '../src/index.js';

/** A memory target whose writes complete only when the test says so (or fail). */
class HeldDevice extends MemoryDevice {
  readonly calls: Array<{ offset: number; length: number }> = [];
  readonly held: Array<{ complete(): void; fail(error: unknown): void }> = [];

  protected override async writeAt(offset: number, data: Uint8Array): Promise<void> {
    this.calls.push({ offset, length: data.byteLength });
    await new Promise<void>((resolve, reject) =>
      this.held.push({ complete: resolve, fail: reject }),
    );
    await super.writeAt(offset, data);
  }

  releaseAll(): void {
    for (const write of this.held.splice(0)) write.complete();
  }
}

/** A memory target whose writes complete after a few turns of the event loop, out of order. */
class ShuffledDevice extends MemoryDevice {
  #turn = 0;
  readonly calls: Array<{ offset: number; length: number }> = [];

  protected override async writeAt(offset: number, data: Uint8Array): Promise<void> {
    this.calls.push({ offset, length: data.byteLength });
    const turns = (this.#turn++ * 7) % 5;
    for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
    await super.writeAt(offset, data);
  }
}

/** ShuffledDevice that also records the most writes it had in flight at once. */
class CountingDevice extends ShuffledDevice {
  inFlight = 0;
  maxInFlight = 0;

  protected override async writeAt(offset: number, data: Uint8Array): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await super.writeAt(offset, data);
    } finally {
      this.inFlight--;
    }
  }
}

const flushTurns = () => new Promise((resolve) => setImmediate(resolve));

describe('WriteBehind', () => {
  it('writes views of slabs at their offsets while later slabs fill, completions in any order', async () => {
    const target = new ShuffledDevice(64 << 10);
    const writes = new WriteBehind(target, { slabSize: 4096, slabs: 3 });
    const expected = Buffer.alloc(64 << 10);
    for (let block = 0; block < 16; block++) {
      const slab = await writes.acquire();
      slab.fill(block + 1);
      // Two writes from one slab, the second before the first on the device.
      writes.write(block * 4096 + 2048, slab.subarray(2048));
      writes.write(block * 4096, slab.subarray(0, 1024));
      writes.release(slab);
      expected.fill(block + 1, block * 4096, block * 4096 + 1024);
      expected.fill(block + 1, block * 4096 + 2048, (block + 1) * 4096);
    }
    await writes.finish();
    expect(target.bytes.equals(expected)).toBe(true);
    expect(writes.bytesWritten).toBe(16 * 3072);
  });

  it('holds memory to its slabs: acquire waits until a slab’s writes are done', async () => {
    const target = new HeldDevice(1 << 20);
    const writes = new WriteBehind(target, { slabSize: 4096, slabs: 2 });
    for (let i = 0; i < 2; i++) {
      const slab = await writes.acquire();
      writes.write(i * 4096, slab);
      writes.release(slab);
    }
    let third = false;
    const waiting = writes.acquire().then((slab) => {
      third = true;
      return slab;
    });
    await flushTurns();
    expect(third).toBe(false);
    expect(target.calls).toHaveLength(2);
    (target.held.shift() as { complete(): void }).complete();
    const slab = await waiting;
    expect(third).toBe(true);
    writes.release(slab);
    target.releaseAll();
    await writes.finish();
  });

  it('append gathers pieces that follow on into one write per slab, copying them', async () => {
    const target = new ShuffledDevice(1 << 20);
    const writes = new WriteBehind(target, { slabSize: 8192, slabs: 2 });
    const piece = Buffer.alloc(1024);
    for (let i = 0; i < 10; i++) {
      piece.fill(i + 1);
      await writes.append(i * 1024, piece);
    }
    piece.fill(0xee);
    await writes.append(100_000, piece); // not following on: a new write
    piece.fill(0); // the caller may reuse its buffer at once
    await writes.finish();
    expect(target.calls).toEqual([
      { offset: 0, length: 8192 },
      { offset: 8192, length: 2048 },
      { offset: 100_000, length: 1024 },
    ]);
    for (let i = 0; i < 10; i++) expect(target.bytes[i * 1024 + 5]).toBe(i + 1);
    expect(target.bytes[100_500]).toBe(0xee);
  });

  it('a failed write fails the next call and finish, after the other writes in flight complete', async () => {
    const target = new HeldDevice(1 << 20);
    const writes = new WriteBehind(target, { slabSize: 4096, slabs: 4 });
    for (let i = 0; i < 3; i++) {
      const slab = await writes.acquire();
      slab.fill(i + 1);
      writes.write(i * 4096, slab);
      writes.release(slab);
    }
    const failure = new BlockIoError('EIO', 'write failed', { path: 'memory', offset: 4096 });
    target.held[1]?.fail(failure);
    await flushTurns();
    expect(() => writes.write(65536, Buffer.alloc(1))).toThrow(failure);
    await expect(writes.acquire()).rejects.toBe(failure);
    await expect(writes.append(65536, Buffer.alloc(1))).rejects.toBe(failure);
    const finished = writes.finish();
    let settled = false;
    void finished.catch(() => {
      settled = true;
    });
    await flushTurns();
    // The other two writes are still in flight: finish waits for them.
    expect(settled).toBe(false);
    target.releaseAll();
    await expect(finished).rejects.toBe(failure);
    expect(target.bytes[0]).toBe(1);
    expect(target.bytes[8192]).toBe(3);
    expect(target.calls).toHaveLength(3);
  });

  it('a write that fails wakes callers waiting for a slab with its error', async () => {
    const target = new HeldDevice(1 << 20);
    const writes = new WriteBehind(target, { slabSize: 4096, slabs: 1 });
    const slab = await writes.acquire();
    writes.write(0, slab);
    const waiting = writes.acquire();
    writes.release(slab);
    const failure = new Error('disk gone');
    target.held[0]?.fail(failure);
    await expect(waiting).rejects.toBe(failure);
    await writes.abandon();
  });

  it('writesInFlight: later writes wait their turn and start in the order they were made', async () => {
    const target = new HeldDevice(1 << 20);
    const writes = new WriteBehind(target, { slabSize: 4096, slabs: 4, writesInFlight: 1 });
    for (let i = 0; i < 3; i++) {
      const slab = await writes.acquire();
      slab.fill(i + 1);
      writes.write((2 - i) * 4096, slab);
      writes.release(slab);
    }
    await flushTurns();
    expect(target.calls).toEqual([{ offset: 8192, length: 4096 }]);
    const finished = writes.finish();
    for (let turn = 0; turn < 3; turn++) {
      expect(target.held).toHaveLength(1);
      (target.held.shift() as { complete(): void }).complete();
      await flushTurns();
    }
    await finished;
    expect(target.calls.map((call) => call.offset)).toEqual([8192, 4096, 0]);
    expect([target.bytes[0], target.bytes[4096], target.bytes[8192]]).toEqual([3, 2, 1]);
  });

  it('writes still waiting for a turn are dropped after a failure or abandon, and free their slabs', async () => {
    for (const how of ['failure', 'abandon'] as const) {
      const target = new HeldDevice(1 << 20);
      const writes = new WriteBehind(target, { slabSize: 4096, slabs: 3, writesInFlight: 1 });
      for (let i = 0; i < 3; i++) {
        const slab = await writes.acquire();
        slab.fill(i + 1);
        writes.write(i * 4096, slab);
        writes.release(slab);
      }
      const failure = new Error('disk gone');
      if (how === 'failure') {
        target.held[0]?.fail(failure);
        await expect(writes.finish()).rejects.toBe(failure);
      } else {
        const abandoned = writes.abandon();
        target.releaseAll();
        await abandoned;
        expect(target.bytes[0]).toBe(1);
      }
      expect(target.calls).toHaveLength(1);
      expect(target.bytes[4096]).toBe(0);
      expect(target.bytes[8192]).toBe(0);
    }
  });

  it('hands out buffers that own their memory (page-aligned, see allocateAligned)', async () => {
    const writes = new WriteBehind(new MemoryDevice(1 << 20), { slabSize: 8192, slabs: 2 });
    const first = await writes.acquire();
    const second = await writes.acquire();
    for (const slab of [first, second]) {
      expect(slab.byteLength).toBe(8192);
      expect(slab.byteOffset).toBe(0);
      expect(slab.buffer.byteLength).toBe(8192);
    }
    expect(first.buffer).not.toBe(second.buffer);
    writes.release(first);
    writes.release(second);
    await writes.finish();
  });

  it('refuses buffers it did not hand out and bad settings', async () => {
    const writes = new WriteBehind(new MemoryDevice(4096));
    expect(() => writes.write(0, Buffer.alloc(16))).toThrow(/views of acquired slabs/);
    expect(() => new WriteBehind(new MemoryDevice(1), { slabs: 0 })).toThrow(BlockIoError);
    expect(() => new WriteBehind(new MemoryDevice(1), { slabSize: 1.5 })).toThrow(BlockIoError);
    expect(() => new WriteBehind(new MemoryDevice(1), { writesInFlight: 0 })).toThrow(BlockIoError);
    expect(() => new WriteBehind(new MemoryDevice(1), { writesInFlight: 1.5 })).toThrow(
      BlockIoError,
    );
  });

  it('property: any mix of appends and slab writes of disjoint ranges gives the model’s bytes', async () => {
    const size = 1 << 16;
    const piece = fc.record({
      start: fc.nat({ max: 63 }),
      blocks: fc.integer({ min: 1, max: 4 }),
      fill: fc.integer({ min: 1, max: 255 }),
      append: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(piece, { maxLength: 30 }),
        fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
        async (pieces, writesInFlight) => {
          const target = new CountingDevice(size);
          const writes = new WriteBehind(target, { slabSize: 2048, slabs: 3, writesInFlight });
          const model = Buffer.alloc(size);
          const used = new Uint8Array(size / 1024);
          for (const { start, blocks, fill, append } of pieces) {
            const length = Math.min(blocks, 64 - start);
            if (used.subarray(start, start + length).some((u) => u === 1)) continue;
            used.fill(1, start, start + length);
            const offset = start * 1024;
            const bytes = Buffer.alloc(length * 1024, fill);
            model.set(bytes, offset);
            if (append) {
              await writes.append(offset, bytes);
              continue;
            }
            for (let done = 0; done < bytes.byteLength; done += writes.slabSize) {
              const slab = await writes.acquire();
              const part = bytes.subarray(done, done + writes.slabSize);
              slab.set(part);
              writes.write(offset + done, slab.subarray(0, part.byteLength));
              writes.release(slab);
            }
          }
          await writes.finish();
          expect(target.bytes.equals(model)).toBe(true);
          if (writesInFlight !== undefined) {
            expect(target.maxInFlight).toBeLessThanOrEqual(writesInFlight);
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
