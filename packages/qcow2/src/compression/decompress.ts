import { type CompressionType, decodeClusterInto } from './cluster-decoder.js';
import { type DecompressWhere, decompressFailure } from './decompress-failure.js';
import { inlineDecodeTools } from './inflate-pool.js';
import { nodeZlib } from './node-zlib.js';

export type { CompressionType } from './cluster-decoder.js';
export type { DecompressWhere } from './decompress-failure.js';

/**
 * Inflates one compressed cluster (qcow2.rst "Compressed Clusters"). The output
 * is bounded by the cluster size whatever the input claims, and anything but
 * exactly one cluster of output is DECOMPRESS_FAILED. zlib runs on libuv's
 * thread pool, zstd on the calling thread; readers of many clusters use an
 * image's InflatePool instead.
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
    const zlib = nodeZlib();
    const options = {
      // QEMU's compressed data is raw deflate, padded to whole sectors and possibly
      // followed by the next cluster's bytes: stop at the end of the stream, and
      // report a stream that ends early as a short result instead of an exception.
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
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
  const out = Buffer.allocUnsafe(clusterSize);
  const detail = decodeClusterInto(
    await inlineDecodeTools('zstd'),
    'zstd',
    input,
    clusterSize,
    out,
    0,
  );
  if (detail !== undefined) throw decompressFailure(where, 'zstd', detail);
  return out;
}
