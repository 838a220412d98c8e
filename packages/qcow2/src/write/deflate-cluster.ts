import { deflateRaw } from 'pako';

/**
 * Compresses one cluster as QEMU does for compression type zlib: raw deflate
 * (no zlib header), a 4 KiB window (windowBits -12), memLevel 9, the default
 * level and strategy. Returns undefined when the result would not be smaller
 * than the cluster (QEMU then stores the cluster uncompressed).
 *
 * pako is a line-for-line port of zlib's deflate, so its output is byte for
 * byte what the system zlib behind qemu-img produces; Node's bundled zlib (a
 * Chromium fork with a different match finder) produces other, equally valid
 * streams, which would make our compressed images differ from qemu-img's.
 */
export function deflateCluster(cluster: Uint8Array): Uint8Array | undefined {
  const compressed = deflateRaw(cluster, { level: -1, windowBits: 12, memLevel: 9, strategy: 0 });
  // QEMU gives deflate an output buffer of cluster_size - 1 bytes.
  return compressed.byteLength <= cluster.byteLength - 1 ? compressed : undefined;
}
