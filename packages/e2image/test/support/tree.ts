import { mkdir, open, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { seededBytes } from '@x/test-utils';

/**
 * A deterministic tree for `mke2fs -d`, after tools' gen_tree.py (formats doc 4a):
 * small files of varied sizes in a two-level directory layout, fast and slow
 * symlinks, and optionally a big htree directory, a sparse file with many
 * extents, and a file with data beyond the triple-indirect boundary.
 */
export interface TreeSpec {
  /** Small files (5% empty, 45% ≤ 512 B, 49% ≤ 16 KiB, 1% ≤ 256 KiB). */
  files: number;
  seed: number;
  /** Entries in one directory named "bigdir" (htree when dir_index is on). */
  htreeEntries?: number;
  /**
   * A sparse file "sparse.bin" with `segments` data blocks of `blockSize` bytes,
   * one every `stride` blocks: one extent each, so the tree needs index blocks.
   */
  sparse?: { segments: number; stride: number; blockSize: number };
  /** One block of data at this byte offset in "far.bin" (ext2: reaches the triple-indirect block). */
  farDataAt?: number;
  /** A contiguous file "large.bin" of this many bytes. */
  largeFile?: number;
  /** Tiny files and directories for inline_data ("inline/"). */
  inline?: boolean;
}

class Random {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0 || 1;
  }
  next(): number {
    let x = this.#state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x >>> 0;
    return this.#state / 2 ** 32;
  }
  int(low: number, high: number): number {
    return low + Math.floor(this.next() * (high - low + 1));
  }
}

export async function writeTree(root: string, spec: TreeSpec): Promise<void> {
  const random = new Random(spec.seed);
  const blob = seededBytes(1 << 20, spec.seed);
  await mkdir(root, { recursive: true });
  const directories: string[] = [];
  const top = Math.max(1, Math.ceil(spec.files / 200));
  for (let a = 0; a < top; a++) {
    for (let b = 0; b < 4; b++) {
      const directory = join(root, `d${a}`, `sub${b}_${'x'.repeat(random.int(0, 40))}`);
      await mkdir(directory, { recursive: true });
      directories.push(directory);
    }
  }
  for (let i = 0; i < spec.files; i++) {
    const directory = directories[i % directories.length] as string;
    const r = random.next();
    const size =
      r < 0.05
        ? 0
        : r < 0.5
          ? random.int(1, 512)
          : r < 0.99
            ? random.int(513, 16384)
            : random.int(16385, 1 << 18);
    const offset = size > 0 ? random.int(0, blob.length - size) : 0;
    const name = `f${String(i).padStart(6, '0')}_${'n'.repeat(random.int(0, 60))}`;
    await writeFile(join(directory, name), blob.subarray(offset, offset + size));
    if (i % 50 === 0) {
      await symlink('t'.repeat(random.next() < 0.5 ? 10 : 300), join(directory, `l${i}`));
    }
  }
  if (spec.htreeEntries) {
    const big = join(root, 'bigdir');
    await mkdir(big);
    for (let i = 0; i < spec.htreeEntries; i++) {
      await writeFile(
        join(big, `entry_${String(i).padStart(5, '0')}_${'y'.repeat(random.int(0, 24))}`),
        '',
      );
    }
  }
  if (spec.sparse) {
    const { segments, stride, blockSize } = spec.sparse;
    const handle = await open(join(root, 'sparse.bin'), 'w');
    try {
      for (let i = 0; i < segments; i++) {
        const data = seededBytes(blockSize, spec.seed + i + 1);
        await handle.write(data, 0, blockSize, i * stride * blockSize);
      }
    } finally {
      await handle.close();
    }
  }
  if (spec.farDataAt !== undefined) {
    const handle = await open(join(root, 'far.bin'), 'w');
    try {
      await handle.write(seededBytes(4096, spec.seed + 7), 0, 4096, spec.farDataAt);
    } finally {
      await handle.close();
    }
  }
  if (spec.largeFile) {
    const handle = await open(join(root, 'large.bin'), 'w');
    try {
      for (let done = 0; done < spec.largeFile; done += blob.length) {
        await handle.write(blob, 0, Math.min(blob.length, spec.largeFile - done), done);
      }
    } finally {
      await handle.close();
    }
  }
  if (spec.inline) {
    const inline = join(root, 'inline');
    for (let d = 0; d < 20; d++) {
      const directory = join(inline, `i${d}`);
      await mkdir(directory, { recursive: true });
      for (let f = 0; f < d % 4; f++) {
        await writeFile(
          join(directory, `t${f}`),
          blob.subarray(d * 10, d * 10 + random.int(1, 150)),
        );
      }
    }
  }
}
