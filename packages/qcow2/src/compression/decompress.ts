import zlib from 'node:zlib';
import type { CompressionType } from './cluster-decoder.js';
import { type DecompressWhere, decompressFailure } from './decompress-failure.js';
import { parseZstdFrame } from './zstd-frame.js';

export type { CompressionType } from './cluster-decoder.js';
export type { DecompressWhere } from './decompress-failure.js';

type NodeZstd = (
  input: Uint8Array,
  options: { maxOutputLength: number },
  callback: (error: Error | null, result: Buffer) => void,
) => void;

// node:zlib has zstd from Node 22.15 / 23.8; older versions use fzstd (pure JS).
const nativeZstd = (zlib as unknown as { zstdDecompress?: NodeZstd }).zstdDecompress;

const inflateOptions = {
  // QEMU's compressed data is raw deflate, padded to whole sectors and possibly
  // followed by the next cluster's bytes: stop at the end of the stream, and
  // report a stream that ends early as a short result instead of an exception.
  finishFlush: zlib.constants.Z_SYNC_FLUSH,
};

/**
 * Inflates one compressed cluster (qcow2.rst "Compressed Clusters"). The output
 * is bounded by the cluster size whatever the input claims, and anything but
 * exactly one cluster of output is DECOMPRESS_FAILED. zlib runs on libuv's
 * thread pool, so several clusters inflate in parallel.
 */
export function decompressCluster(
  type: CompressionType,
  input: Buffer,
  clusterSize: number,
  where: DecompressWhere,
): Promise<Buffer> {
  return type === 'zlib'
    ? inflateCluster(input, clusterSize, where)
    : zstdCluster(input, clusterSize, where);
}

function inflateCluster(input: Buffer, clusterSize: number, where: DecompressWhere) {
  return new Promise<Buffer>((resolve, reject) => {
    const options = {
      ...inflateOptions,
      maxOutputLength: clusterSize,
      // One output chunk larger than a cluster: the whole cluster inflates in a
      // single thread-pool job instead of one round trip per 16 KiB.
      chunkSize: clusterSize + 1024,
    };
    zlib.inflateRaw(input, options, (error, out) => {
      if (error) {
        const code = (error as NodeJS.ErrnoException).code;
        reject(
          decompressFailure(
            where,
            'zlib',
            code === 'ERR_BUFFER_TOO_LARGE'
              ? 'it inflates to more than one cluster'
              : error.message,
          ),
        );
      } else if (out.byteLength !== clusterSize) {
        reject(
          decompressFailure(
            where,
            'zlib',
            `it inflates to ${out.byteLength} bytes, not ${clusterSize}`,
          ),
        );
      } else resolve(out);
    });
  });
}

async function zstdCluster(
  input: Buffer,
  clusterSize: number,
  where: DecompressWhere,
): Promise<Buffer> {
  const frame = parseZstdFrame(input);
  if (typeof frame === 'string') throw decompressFailure(where, 'zstd', frame);
  if (frame.contentSize !== undefined && frame.contentSize !== clusterSize) {
    throw decompressFailure(
      where,
      'zstd',
      `the frame holds ${frame.contentSize} bytes, not ${clusterSize}`,
    );
  }
  // A window larger than any cluster cannot be what QEMU wrote; refusing it
  // keeps a forged header from making the decoder allocate gigabytes.
  if (frame.windowSize > Math.max(clusterSize, 1 << 20) * 2) {
    throw decompressFailure(where, 'zstd', `the frame asks for a ${frame.windowSize}-byte window`);
  }
  const exact = input.subarray(0, frame.length);
  let out: Buffer;
  try {
    out = nativeZstd
      ? await new Promise<Buffer>((resolve, reject) =>
          nativeZstd(exact, { maxOutputLength: clusterSize }, (error, result) =>
            error ? reject(error) : resolve(result),
          ),
        )
      : decodeWithFzstd(await loadFzstd(), exact, clusterSize, frame.contentSize);
  } catch (error) {
    throw decompressFailure(where, 'zstd', (error as Error).message);
  }
  if (out.byteLength !== clusterSize) {
    throw decompressFailure(
      where,
      'zstd',
      `it decompresses to ${out.byteLength} bytes, not ${clusterSize}`,
    );
  }
  return out;
}

type Fzstd = typeof import('fzstd');
let fzstd: Promise<Fzstd> | undefined;

/** fzstd is loaded the first time a zstd cluster is read, not at start-up. */
function loadFzstd(): Promise<Fzstd> {
  fzstd ??= import('fzstd');
  return fzstd;
}

function decodeWithFzstd(
  { Decompress: FzstdStream, decompress: fzstdDecompress }: Fzstd,
  frame: Uint8Array,
  clusterSize: number,
  contentSize: number | undefined,
): Buffer {
  if (contentSize !== undefined) {
    // The declared size was checked: decode straight into a cluster buffer.
    const out = Buffer.alloc(clusterSize);
    fzstdDecompress(frame, out);
    return out;
  }
  // No declared size: stream, and stop as soon as the output passes one cluster
  // (a few input bytes can describe gigabytes of output).
  const out = Buffer.alloc(clusterSize);
  let produced = 0;
  const stream = new FzstdStream((chunk) => {
    if (produced + chunk.byteLength > clusterSize) {
      throw new Error('it decompresses to more than one cluster');
    }
    out.set(chunk, produced);
    produced += chunk.byteLength;
  });
  stream.push(frame, true);
  return out.subarray(0, produced);
}
