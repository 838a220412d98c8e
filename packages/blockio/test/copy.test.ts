import { describe, expect, it } from 'vitest';
import { copy, MemoryDevice } from '../src/index.js';

describe('copy', () => {
  it('copies bytes and skips zero blocks', async () => {
    const source = new MemoryDevice(64 * 1024);
    source.bytes.fill(7, 8192, 12288);
    const target = new MemoryDevice(64 * 1024);
    const result = await copy(source, target, { targetIsZeroed: true });
    expect(target.bytes.equals(source.bytes)).toBe(true);
    expect(result.bytesWritten).toBe(4096);
    expect(result.bytesZero).toBe(60 * 1024);
  });
});
