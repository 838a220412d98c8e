import { Deflate } from 'pako';

/** The part of pako's Deflate class deflateWith uses. */
export interface DeflateConstructor {
  new (options: {
    level: -1;
    windowBits: number;
    memLevel: number;
    strategy: 0;
    raw: true;
    chunkSize: number;
  }): { push(data: Uint8Array, finish: boolean): boolean; result: Uint8Array; err: number };
}

/**
 * Compresses one cluster as QEMU's qcow2_zlib_compress() does: raw deflate
 * (no zlib header), a 4 KiB window (windowBits -12), memLevel 9, the default
 * level and strategy, in ONE deflate(Z_FINISH) call whose output buffer holds
 * cluster_size - 1 bytes. QEMU keeps the result only when that call returns
 * Z_STREAM_END, and zlib returns Z_OK instead when the stream fills the buffer
 * exactly (it cannot tell the end is out until it has room for more): so a
 * cluster is stored compressed only if it deflates to at most cluster_size - 2
 * bytes. Returns undefined otherwise (QEMU then stores the cluster as it is).
 *
 * The output buffer size matters: zlib picks different block boundaries when
 * it has to stop for output space, so deflating into pako's default 16 KiB
 * pieces gives other bytes than QEMU for clusters that compress to more than
 * 16 KiB. pako is a line-for-line port of zlib's deflate, so with the same
 * parameters its output is byte for byte what the system zlib behind qemu-img
 * produces; Node's bundled zlib (a Chromium fork with a different match
 * finder) produces other, equally valid streams.
 *
 * Self-contained (pako's Deflate is passed in) so the deflate workers run this
 * very function from its source text (deflate-pool.ts).
 */
export function deflateWith(
  DeflateClass: DeflateConstructor,
  cluster: Uint8Array,
): Uint8Array | undefined {
  const room = cluster.byteLength - 1;
  const deflate = new DeflateClass({
    level: -1,
    windowBits: 12,
    memLevel: 9,
    strategy: 0,
    raw: true,
    chunkSize: room,
  });
  deflate.push(cluster, true);
  if (deflate.err !== 0) throw new Error(`deflate failed with zlib status ${deflate.err}`);
  return deflate.result.byteLength < room ? deflate.result : undefined;
}

/** deflateWith pako's Deflate: QEMU's compressed form of `cluster`, or undefined. */
export function deflateCluster(cluster: Uint8Array): Uint8Array | undefined {
  return deflateWith(Deflate as unknown as DeflateConstructor, cluster);
}
