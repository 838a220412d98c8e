import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { allocateAligned } from '../src/index.js';

describe('allocateAligned', () => {
  it('gives a zero-filled Buffer that owns its memory', () => {
    const buffer = allocateAligned(3 * 4096 + 5);
    expect(Buffer.isBuffer(buffer)).toBe(true);
    expect(buffer.byteLength).toBe(3 * 4096 + 5);
    expect(buffer.byteOffset).toBe(0);
    expect(buffer.buffer.byteLength).toBe(3 * 4096 + 5);
    // Backed by pages V8 reserves itself (a resizable ArrayBuffer): page-aligned.
    expect((buffer.buffer as { resizable?: boolean }).resizable).toBe(true);
    expect(buffer.every((byte) => byte === 0)).toBe(true);
    // Fixed size: the memory does not grow or shrink under the view.
    buffer.fill(0xab);
    expect(buffer.subarray(-1)[0]).toBe(0xab);
  });

  it('goes through read and write system calls on libuv’s pool like any Buffer', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'aligned-'));
    try {
      const path = join(directory, 'file');
      const out = allocateAligned(64 << 10);
      for (let i = 0; i < out.byteLength; i++) out[i] = (i * 31) & 0xff;
      const handle = await open(path, 'w+');
      await handle.write(out, 0, out.byteLength, 4096);
      const back = allocateAligned(64 << 10);
      const { bytesRead } = await handle.read(back, 0, back.byteLength, 4096);
      await handle.close();
      expect(bytesRead).toBe(back.byteLength);
      expect(back.equals(out)).toBe(true);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
