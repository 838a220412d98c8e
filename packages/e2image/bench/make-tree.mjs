// Writes the deterministic source tree of the e2image benchmark for `mke2fs -d`
// (after gen_tree.py, formats doc §4a, with smaller files so that the tree and
// the filesystem are quick to build): `files` regular files in a two-level
// directory layout (100 files a directory), 5% empty, 55% ≤ 512 B, 39.9% ≤ 8 KiB,
// 0.1% ≤ 1 MiB; a fast or slow symlink every 200 files; one 5,000-entry htree
// directory (part of the `files`); a 2,000-segment sparse file (its extent tree
// needs index blocks); and one contiguous 64 MiB file.
//
// PROFILE `metadata` (the 64 GiB, million-inode rows) keeps the same layout with
// 85% empty files, 14.9% ≤ 4 KiB and 0.1% ≤ 1 MiB: e2image copies inodes,
// directories and extent blocks, not file data, so the tree and the image stay
// small (about 0.5 GB for 600,000 files) while the metadata is all there.
//
//   node make-tree.mjs ROOT FILES SEED [PROFILE]

import { createCipheriv } from 'node:crypto';
import { closeSync, mkdirSync, openSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const [root, filesArgument, seedArgument] = process.argv.slice(2);
if (!root || !filesArgument) throw new Error('usage: make-tree.mjs ROOT FILES [SEED]');
const files = Number(filesArgument);
const seed = Number(seedArgument ?? 1) >>> 0 || 1;
const metadataProfile = process.argv[5] === 'metadata';

let state = seed;
const random = () => {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 2 ** 32;
};
const int = (low, high) => low + Math.floor(random() * (high - low + 1));
// Incompressible content, the same for a given seed.
const blob = createCipheriv(
  'aes-128-ctr',
  Buffer.alloc(16, seed & 0xff),
  Buffer.alloc(16, 2),
).update(Buffer.alloc(1 << 20));

mkdirSync(root, { recursive: true });
const htreeEntries = Math.min(5000, Math.floor(files / 10));
const spread = files - htreeEntries;
const directories = [];
for (let a = 0; a < Math.max(1, Math.ceil(spread / 1000)); a++) {
  for (let b = 0; b < 10; b++) {
    const directory = join(root, `d${a}`, `sub${b}_${'x'.repeat(int(0, 40))}`);
    mkdirSync(directory, { recursive: true });
    directories.push(directory);
  }
}
for (let i = 0; i < spread; i++) {
  const directory = directories[i % directories.length];
  const r = random();
  const size = metadataProfile
    ? r < 0.85
      ? 0
      : r < 0.999
        ? int(1, 4096)
        : int(4097, 1 << 20)
    : r < 0.05
      ? 0
      : r < 0.6
        ? int(1, 512)
        : r < 0.999
          ? int(513, 8192)
          : int(8193, 1 << 20);
  const offset = size > 0 ? int(0, blob.length - size) : 0;
  const name = `f${String(i).padStart(6, '0')}_${'n'.repeat(int(0, 60))}`;
  writeFileSync(join(directory, name), blob.subarray(offset, offset + size));
  if (i % 200 === 0) symlinkSync('t'.repeat(random() < 0.5 ? 10 : 300), join(directory, `l${i}`));
}
const big = join(root, 'bigdir');
mkdirSync(big);
for (let i = 0; i < htreeEntries; i++) {
  writeFileSync(join(big, `entry_${String(i).padStart(5, '0')}_${'y'.repeat(int(0, 24))}`), '');
}
const sparse = openSync(join(root, 'sparse.bin'), 'w');
for (let i = 0; i < 2000; i++)
  writeSync(sparse, blob, (i * 4096) % blob.length, 4096, i * 3 * 4096);
closeSync(sparse);
const large = openSync(join(root, 'large.bin'), 'w');
for (let i = 0; i < 64; i++) writeSync(large, blob);
closeSync(large);
