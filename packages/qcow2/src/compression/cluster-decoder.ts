import type { RawInflateInto } from './raw-inflater.js';
import type { WasmZstd } from './wasm-zstd.js';
import type { ZstdFrameInfo } from './zstd-frame.js';

export type CompressionType = 'zlib' | 'zstd';

/** What decodeClusterInto needs, passed in so that a worker can run its source text. */
export interface DecodeTools {
  inflateRawSync(
    input: Uint8Array,
    options: { finishFlush: number; maxOutputLength: number; chunkSize: number },
  ): Uint8Array;
  /** A reused raw-inflate stream (openRawInflater); inflateRawSync without it. */
  inflateRawInto?: RawInflateInto | undefined;
  /** A reused node:zlib zstd handle (openZstdDecoder, Node 22.15+); preferred when set. */
  zstdDecodeInto?: RawInflateInto | undefined;
  /** node:zlib's zstd (Node 22.15+ / 23.8+); libzstd in WebAssembly is used without it. */
  zstdDecompressSync:
    | ((input: Uint8Array, options: { maxOutputLength: number }) => Uint8Array)
    | undefined;
  wasmZstd: Pick<WasmZstd, 'decompressInto'> | undefined;
  parseZstdFrame(input: Uint8Array): ZstdFrameInfo | string;
  /** zlib.constants.Z_SYNC_FLUSH */
  syncFlush: number;
}

/**
 * Decodes one compressed cluster (qcow2.rst "Compressed Clusters") into
 * `out[outOffset, outOffset + clusterSize)`. Returns undefined on success, or
 * what is wrong: anything but exactly one cluster of output is a failure, and
 * the output is bounded by the cluster size whatever the input claims.
 *
 * Self-contained (no module-level names, everything through `tools`): the
 * inflate workers run its source text, the inline path calls it directly.
 */
export function decodeClusterInto(
  tools: DecodeTools,
  type: CompressionType,
  input: Uint8Array,
  clusterSize: number,
  out: Uint8Array,
  outOffset: number,
): string | undefined {
  if (type === 'zlib') {
    if (tools.inflateRawInto) return tools.inflateRawInto(input, out, outOffset, clusterSize);
    let inflated: Uint8Array;
    try {
      // QEMU's compressed data is raw deflate, padded to whole sectors and possibly
      // followed by the next cluster's bytes: stop at the end of the stream, and
      // report a stream that ends early as a short result instead of an exception.
      // One output chunk larger than a cluster: one pass through inflate().
      inflated = tools.inflateRawSync(input, {
        finishFlush: tools.syncFlush,
        maxOutputLength: clusterSize,
        chunkSize: clusterSize + 1024,
      });
    } catch (error) {
      return (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE'
        ? 'it inflates to more than one cluster'
        : (error as Error).message;
    }
    if (inflated.byteLength !== clusterSize) {
      return `it inflates to ${inflated.byteLength} bytes, not ${clusterSize}`;
    }
    out.set(inflated, outOffset);
    return undefined;
  }
  const frame = tools.parseZstdFrame(input);
  if (typeof frame === 'string') return frame;
  if (frame.contentSize !== undefined && frame.contentSize !== clusterSize) {
    return `the frame holds ${frame.contentSize} bytes, not ${clusterSize}`;
  }
  // A window larger than any cluster cannot be what QEMU wrote; refusing it
  // keeps a forged header from making the decoder allocate gigabytes.
  if (frame.windowSize > Math.max(clusterSize, 1 << 20) * 2) {
    return `the frame asks for a ${frame.windowSize}-byte window`;
  }
  const exact = input.subarray(0, frame.length);
  const target = out.subarray(outOffset, outOffset + clusterSize);
  if (tools.zstdDecodeInto) return tools.zstdDecodeInto(exact, out, outOffset, clusterSize);
  let produced: number;
  if (tools.zstdDecompressSync) {
    try {
      // Bounded by the cluster size (a few input bytes can describe gigabytes).
      const result = tools.zstdDecompressSync(exact, { maxOutputLength: clusterSize });
      if (result.byteLength === clusterSize) target.set(result);
      produced = result.byteLength;
    } catch (error) {
      return (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE'
        ? 'it decompresses to more than one cluster'
        : (error as Error).message;
    }
  } else {
    // Straight into the cluster, bounded by its size; libzstd's wrapper reports
    // every failure alike.
    try {
      produced = (tools.wasmZstd as Pick<WasmZstd, 'decompressInto'>).decompressInto(exact, target);
    } catch (error) {
      // The WebAssembly heap could not grow: report it, not a stack trace.
      return (error as Error).message;
    }
    if (produced < 0) {
      return 'libzstd refused the frame (corrupt, or more than one cluster of output)';
    }
  }
  if (produced !== clusterSize) return `it decompresses to ${produced} bytes, not ${clusterSize}`;
  return undefined;
}
