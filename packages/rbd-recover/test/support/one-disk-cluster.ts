import { type FakeCluster, generateFakeCluster } from '../../src/fixture/index.js';

export const MiB = 1 << 20;

/** `length` bytes that name `tag` and their offset every 512 bytes (misplaced data shows). */
export function pattern(tag: string, offset: number, length: number): Buffer {
  const out = Buffer.alloc(length, 0x61 + (tag.charCodeAt(0) % 26));
  for (let at = 0; at < length; at += 512)
    out.write(`${tag} off=${(offset + at).toString(16)} `, at);
  return out;
}

/**
 * Two OSDs holding one format 2 image `1/disk` of 24 MiB in 1 MiB objects, its first
 * 20 MiB written with `pattern(tag)`, xattrs spilled to omap: the cluster the SSH
 * fault and transfer-thread tests recover.
 */
export function oneDiskCluster(directory: string, tag: string): Promise<FakeCluster> {
  return generateFakeCluster({
    directory,
    osds: 2,
    images: [
      {
        pool: 1,
        name: 'disk',
        format: 2,
        order: 20,
        size: 24 * MiB,
        operations: [{ write: { offset: 0, data: pattern(tag, 0, 20 * MiB) } }],
      },
    ],
    xattrs: 'omap',
  });
}
