import { Deflate } from 'pako';
import { Qcow2Error } from '../errors.js';

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

/** What deflateWith did: zlib's status (0: it went well) and the compressed cluster, if it shrinks. */
export interface DeflateOutcome {
  status: number;
  compressed: Uint8Array | undefined;
}

/**
 * Compresses one cluster as QEMU's qcow2_zlib_compress() does: raw deflate
 * (no zlib header), a 4 KiB window (windowBits -12), memLevel 9, the default
 * level and strategy, in ONE deflate(Z_FINISH) call whose output buffer holds
 * cluster_size - 1 bytes. QEMU keeps the result only when that call returns
 * Z_STREAM_END, and zlib returns Z_OK instead when the stream fills the buffer
 * exactly (it cannot tell the end is out until it has room for more): so a
 * cluster is stored compressed only if it deflates to at most cluster_size - 2
 * bytes. `compressed` is undefined otherwise (QEMU then stores the cluster as
 * it is).
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
 * very function from its source text (deflate-pool.ts). For the same reason
 * it throws nothing of ours: a failure comes back as zlib's status, which
 * `compressedOrThrow` turns into a Qcow2Error on the calling thread.
 */
export function deflateWith(DeflateClass: DeflateConstructor, cluster: Uint8Array): DeflateOutcome {
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
  if (deflate.err !== 0) return { status: deflate.err, compressed: undefined };
  return { status: 0, compressed: deflate.result.byteLength < room ? deflate.result : undefined };
}

/** The compressed cluster of a DeflateOutcome (undefined: it does not shrink), or COMPRESS_FAILED. */
export function compressedOrThrow(outcome: DeflateOutcome): Uint8Array | undefined {
  if (outcome.status !== 0) {
    throw new Qcow2Error(
      'COMPRESS_FAILED',
      `deflating a cluster for a compressed write failed: zlib status ${outcome.status}`,
      { structure: 'compressed cluster' },
    );
  }
  return outcome.compressed;
}

/** deflateWith pako's Deflate: QEMU's compressed form of `cluster`, or undefined. */
export function deflateCluster(cluster: Uint8Array): Uint8Array | undefined {
  return compressedOrThrow(deflateWith(Deflate as unknown as DeflateConstructor, cluster));
}
