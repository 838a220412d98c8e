import { loadWasmZstd, type WasmZstd } from '../compression/wasm-zstd.js';
import { Qcow2Error } from '../errors.js';
import type { DeflateOutcome } from './deflate-cluster.js';

/**
 * Compresses one cluster as QEMU's qcow2_zstd_compress() does: one
 * ZSTD_compressStream2(ZSTD_e_end) call on a fresh context (the default level 3,
 * no checksum, and the content size declared, since the whole input is given at
 * once) into a buffer of cluster_size - 1 bytes; anything that does not fit is
 * stored uncompressed. ZSTD_compress with the same level makes the same frame
 * (checked byte for byte against qemu-img's output), so a frame of at most
 * cluster_size - 1 bytes is kept and a longer one is not.
 *
 * Self-contained (the codec is passed in) so the deflate workers run this very
 * function from its source text; a failure comes back as status -1, which
 * `zstdCompressedOrThrow` turns into a Qcow2Error on the calling thread.
 */
export function zstdCompressWith(
  zstd: Pick<WasmZstd, 'compress'>,
  cluster: Uint8Array,
): DeflateOutcome {
  let frame: Uint8Array | undefined;
  try {
    // ZSTD_CLEVEL_DEFAULT: QEMU never sets a level.
    frame = zstd.compress(cluster, 3);
  } catch {
    // The WebAssembly heap could not grow: a failure like libzstd's own.
    frame = undefined;
  }
  if (frame === undefined) return { status: -1, compressed: undefined };
  return { status: 0, compressed: frame.byteLength < cluster.byteLength ? frame : undefined };
}

/** The compressed cluster of a zstd DeflateOutcome (undefined: it does not shrink), or COMPRESS_FAILED. */
export function zstdCompressedOrThrow(outcome: DeflateOutcome): Uint8Array | undefined {
  if (outcome.status !== 0) {
    throw new Qcow2Error(
      'COMPRESS_FAILED',
      'zstd-compressing a cluster for a compressed write failed (libzstd reported an error)',
      { structure: 'compressed cluster' },
    );
  }
  return outcome.compressed;
}

/** QEMU's zstd-compressed form of `cluster`, or undefined when it does not shrink. */
export async function zstdCluster(cluster: Uint8Array): Promise<Uint8Array | undefined> {
  return zstdCompressedOrThrow(zstdCompressWith(await loadWasmZstd(), cluster));
}
