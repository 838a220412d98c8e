import type * as Zlib from 'node:zlib';

/**
 * Inflates one cluster of raw deflate into `out[outOffset, +clusterSize)`.
 * Returns undefined on success, or what is wrong (as decodeClusterInto does).
 */
export type RawInflateInto = (
  input: Uint8Array,
  out: Uint8Array,
  outOffset: number,
  clusterSize: number,
) => string | undefined;

/** The parts of node:zlib's native handle we drive (present from Node 10 to 24). */
interface ZlibHandle {
  reset(): void;
  writeSync(
    flush: number,
    input: Uint8Array,
    inOffset: number,
    inLength: number,
    out: Uint8Array,
    outOffset: number,
    outLength: number,
  ): void;
  onerror: (message: string) => void;
}

/**
 * One raw-inflate stream, reused for every cluster: node:zlib's native handle
 * under an InflateRaw stream, reset per cluster and inflating straight into the
 * caller's buffer. zlib.inflateRawSync builds a stream object, a zlib state and
 * a 65 KiB result per call, then we copied the result into place: on 3,000 of
 * the bench image's clusters that was 670-720 ms of CPU against 600 ms this way,
 * and the async zlib.inflateRaw (a stream and its events on the main thread per
 * cluster) 800 ms.
 *
 * The handle is not public API (it is what zlib.inflateRawSync drives): when it
 * is missing or shaped differently, this returns undefined and callers use
 * zlib.inflateRawSync. Same results: exactly one cluster, a stream that ends
 * early is a short result, more than a cluster is refused, a data error is its
 * message.
 */
export function openRawInflater(zlib: typeof Zlib): RawInflateInto | undefined {
  return openHandleDecoder(() => zlib.createInflateRaw(), zlib.constants.Z_SYNC_FLUSH, 'inflates');
}

/**
 * The same over node:zlib's zstd decompressor (Node 22.15+ / 23.8+; undefined
 * before). zlib.zstdDecompressSync per cluster made a decoder context, a stream
 * and a result each time: on Node 22, 1 GiB of 64 KiB clusters took 2.5 s and
 * 138 MiB of RSS on one thread, against 1.7 s and 51 MiB through one reused handle.
 * The input must be exactly one frame (parseZstdFrame finds its end).
 */
export function openZstdDecoder(zlib: typeof Zlib): RawInflateInto | undefined {
  const create = (zlib as { createZstdDecompress?: () => unknown }).createZstdDecompress;
  return typeof create === 'function'
    ? openHandleDecoder(() => create(), 0, 'decompresses')
    : undefined;
}

/**
 * Drives the native handle under a node:zlib stream (`createInflateRaw()`,
 * `createZstdDecompress()`): reset per cluster, one synchronous write with
 * `flush` straight into `out`, then a one-byte probe for output past the cluster.
 * After a data error the handle is replaced: Node 22's zstd handle keeps
 * reporting the old error after reset(). `verb` words the short result ("it
 * inflates to 100 bytes, not 65536"). Undefined when the handle is missing or
 * shaped differently (callers then use the one-shot functions).
 * Self-contained (no module-level names): decode workers run its source text.
 */
export function openHandleDecoder(
  createStream: () => unknown,
  flush: number,
  verb: string,
): RawInflateInto | undefined {
  let failure: string | undefined;
  const open = () => {
    const { _handle: handle, _writeState: state } = createStream() as {
      _handle?: Partial<ZlibHandle>;
      _writeState?: unknown;
    };
    if (
      !handle ||
      typeof handle.reset !== 'function' ||
      typeof handle.writeSync !== 'function' ||
      !(state instanceof Uint32Array) ||
      state.length !== 2
    ) {
      return undefined;
    }
    // Replaces the stream's handler (which would destroy the stream).
    handle.onerror = (message) => {
      failure = message;
    };
    // state: [avail_out, avail_in] after each write; left as it was when a write fails.
    return { native: handle as ZlibHandle, state };
  };
  let current = open();
  if (!current) return undefined;
  const probe = new Uint8Array(1);
  return (input, out, outOffset, clusterSize) => {
    current ??= open() as NonNullable<typeof current>;
    const { native, state } = current;
    failure = undefined;
    native.reset();
    // QEMU's deflate data is padded to whole sectors, possibly followed by the
    // next cluster's bytes: inflate stops at the stream's end.
    native.writeSync(flush, input, 0, input.byteLength, out, outOffset, clusterSize);
    if (failure === undefined && (state[0] as number) !== 0) {
      return `it ${verb} to ${clusterSize - (state[0] as number)} bytes, not ${clusterSize}`;
    }
    if (failure === undefined) {
      // A full cluster: one more byte of output would be more than one cluster.
      const rest = state[1] as number;
      native.writeSync(flush, input, input.byteLength - rest, rest, probe, 0, 1);
      if (failure === undefined) {
        return (state[0] as number) === 0 ? `it ${verb} to more than one cluster` : undefined;
      }
    }
    current = undefined;
    return failure;
  };
}
