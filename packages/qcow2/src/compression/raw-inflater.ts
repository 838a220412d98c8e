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
 * message. Self-contained (no module-level names): inflate workers run its
 * source text.
 */
export function openRawInflater(zlib: typeof Zlib): RawInflateInto | undefined {
  const stream = zlib.createInflateRaw() as unknown as {
    _handle?: Partial<ZlibHandle>;
    _writeState?: unknown;
  };
  const handle = stream._handle;
  const state = stream._writeState;
  if (
    !handle ||
    typeof handle.reset !== 'function' ||
    typeof handle.writeSync !== 'function' ||
    !(state instanceof Uint32Array) ||
    state.length !== 2
  ) {
    return undefined;
  }
  const native = handle as ZlibHandle;
  // [avail_out, avail_in] after each write; left as it was when the write fails.
  const availOut = () => state[0] as number;
  const availIn = () => state[1] as number;
  const syncFlush = zlib.constants.Z_SYNC_FLUSH;
  const probe = new Uint8Array(1);
  let failure: string | undefined;
  // Replaces the stream's handler (which would destroy the stream): the handle
  // stays usable and is reset before the next cluster.
  native.onerror = (message) => {
    failure = message;
  };
  return (input, out, outOffset, clusterSize) => {
    failure = undefined;
    native.reset();
    // QEMU's compressed data is raw deflate padded to whole sectors, possibly
    // followed by the next cluster's bytes: inflate stops at the stream's end.
    native.writeSync(syncFlush, input, 0, input.byteLength, out, outOffset, clusterSize);
    if (failure !== undefined) return failure;
    if (availOut() !== 0)
      return `it inflates to ${clusterSize - availOut()} bytes, not ${clusterSize}`;
    // A full cluster: one more byte of output would be more than one cluster.
    const rest = availIn();
    native.writeSync(syncFlush, input, input.byteLength - rest, rest, probe, 0, 1);
    if (failure !== undefined) return failure;
    if (availOut() === 0) return 'it inflates to more than one cluster';
    return undefined;
  };
}
