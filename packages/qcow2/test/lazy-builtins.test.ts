import { describe, expect, it, vi } from 'vitest';
import { openQcow2 } from '../src/read-entry.js';
import { qemuImage } from './support/qemu-fixtures.js';

// The read side loads node:zlib and node:worker_threads on first use, not by an import
// (compression/node-zlib.ts): a CLI that opens a QCOW2 image without compressed clusters
// starts without them. Importing either at load time makes this file fail to load.
vi.mock('node:zlib', () => {
  throw new Error('node:zlib was imported by the read side');
});
vi.mock('node:worker_threads', () => {
  throw new Error('node:worker_threads was imported by the read side');
});

describe('@x/qcow2/read without node:zlib and node:worker_threads imported', () => {
  for (const type of ['zlib', 'zstd'] as const) {
    it(`still inflates ${type} clusters (the modules load when first needed)`, async () => {
      const path = await qemuImage(`lazy-builtins-${type}`, {
        size: '4M',
        options: `compression_type=${type}`,
        commands: ['write -c -P 0x5a 0 2M', 'write -P 0x11 2M 64k'],
      });
      const image = await openQcow2(path);
      try {
        const compressed = await image.read(0, 2 << 20);
        expect(compressed.equals(Buffer.alloc(2 << 20, 0x5a))).toBe(true);
        const plain = await image.read(2 << 20, 64 << 10);
        expect(plain.equals(Buffer.alloc(64 << 10, 0x11))).toBe(true);
      } finally {
        await image.close();
      }
    });
  }
});
