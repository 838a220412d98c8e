import type { SyncFileIo } from '../sync-file-io.js';

/** Numbers per piece in FileJob.items. */
export const FILE_ITEM_FIELDS = 5;

/**
 * Compressed clusters to copy from an image file to a raw file, all I/O done by
 * whoever runs the job (an inflate worker): the main thread only plans.
 */
export interface FileJob {
  /** Descriptor of the image file (read with pread). */
  inFd: number;
  /** Descriptor of the raw output (written with pwrite at guest offsets). */
  outFd: number;
  clusterSize: number;
  /**
   * FILE_ITEM_FIELDS numbers per piece, in guest order: host offset of its
   * compressed bytes, their length (already cut at the end of the file), guest
   * offset of its cluster, guest offset of the wanted bytes, and their length
   * (within that cluster).
   */
  items: Float64Array;
}

/** What went wrong with one piece of a FileJob (mapped to a typed error by the caller). */
export interface FileJobFailure {
  /** Index of the piece. */
  piece: number;
  /** decode: `detail` says why the cluster does not decode; read/write: a system call failed; short-read: the file ended. */
  kind: 'decode' | 'read' | 'short-read' | 'write';
  detail: string;
  /** The system error's code (read, write). */
  code?: string | undefined;
  /** File offset the failed call was at (read, short-read: image file; write: output). */
  offset: number;
  /** Bytes the failed call was asked for. */
  length: number;
}

export interface FileJobResult {
  /** Guest bytes of the pieces (all of them, zeros included) when the job succeeded. */
  guestBytes: number;
  /** Bytes written to the output (all-zero clusters are left as holes). */
  bytesWritten: number;
  failure?: FileJobFailure | undefined;
}

/** Buffers one thread reuses from job to job (grown on demand). */
export interface FileJobScratch {
  input?: Uint8Array;
  output?: Uint8Array;
  zeros?: Uint8Array;
}

/** Decodes one compressed cluster into out[outOffset, +clusterSize); a string says why it failed. */
export type DecodeInto = (
  input: Uint8Array,
  out: Uint8Array,
  outOffset: number,
) => string | undefined;

/**
 * Runs one FileJob: reads the pieces' compressed bytes (those that lie within
 * READ_GAP of each other in one pread), decodes every cluster into one buffer,
 * then writes the wanted bytes at their guest offsets, guest-contiguous pieces
 * with one pwrite and all-zero clusters not at all (they stay holes, as on the
 * main thread's path). Nothing is written unless every cluster decoded.
 *
 * Why here and not on the main thread: handing compressed bytes to a worker
 * and inflated clusters back, then copying them into write buffers, cost a
 * hand-off per batch each way and a copy of every inflated byte; done where
 * the inflate runs, the main thread only walks the tables.
 *
 * Self-contained (no module-level names, everything through its arguments):
 * the inflate workers run its source text, the inline path calls it directly.
 */
export function runFileJob(
  io: SyncFileIo,
  decode: DecodeInto,
  scratch: FileJobScratch,
  job: FileJob,
): FileJobResult {
  const READ_GAP = 4096;
  // Writes are cut at 1 MiB: a write that covers a whole 2 MiB-aligned range makes
  // the kernel allocate a 2 MiB page-cache folio, and on the benchmark VM those
  // writes now and then cost 3-15x the system time (512 MiB in 2 MiB writes: 105 ms
  // to 1.7 s of sys, 5 of 8 runs slow or not; in 1 MiB writes 95-145 ms every time).
  const WRITE_LIMIT = 1 << 20;
  const { items, clusterSize } = job;
  const count = Math.floor(items.length / 5);
  // Page-aligned memory (a resizable ArrayBuffer's pages are V8's own): the
  // kernel copies from it faster than from malloc's 16-bytes-off-a-page blocks.
  const aligned = (size: number): Uint8Array => {
    const Resizable = ArrayBuffer as unknown as new (
      size: number,
      options: { maxByteLength: number },
    ) => ArrayBuffer;
    return new Uint8Array(new Resizable(size, { maxByteLength: size }));
  };
  const fail = (failure: FileJobFailure): FileJobResult => ({
    guestBytes: 0,
    bytesWritten: 0,
    failure,
  });
  if (!scratch.output || scratch.output.byteLength < count * clusterSize) {
    scratch.output = aligned(count * clusterSize);
  }
  const out = scratch.output;
  let guestBytes = 0;
  // Read and decode, one read per run of pieces close together in the file.
  for (let first = 0; first < count; ) {
    const start = items[first * 5] as number;
    let end = start + (items[first * 5 + 1] as number);
    let last = first + 1;
    while (last < count) {
      const host = items[last * 5] as number;
      if (host < start || host > end + READ_GAP) break;
      end = Math.max(end, host + (items[last * 5 + 1] as number));
      last++;
    }
    const length = end - start;
    if (!scratch.input || scratch.input.byteLength < length) {
      scratch.input = new Uint8Array(Math.max(length, 256 << 10));
    }
    const input = scratch.input;
    for (let done = 0; done < length; ) {
      let got: number;
      try {
        got = io.readSync(job.inFd, input, done, length - done, start + done);
      } catch (error) {
        const { code, message } = error as { code?: string; message?: string };
        return fail({
          piece: first,
          kind: 'read',
          detail: String(message),
          code,
          offset: start + done,
          length,
        });
      }
      if (got === 0) {
        return fail({
          piece: first,
          kind: 'short-read',
          detail: `file ended after ${start + done} bytes while reading ${length} bytes at ${start}`,
          offset: start + done,
          length,
        });
      }
      done += got;
    }
    for (let index = first; index < last; index++) {
      const at = (items[index * 5] as number) - start;
      const detail = decode(
        input.subarray(at, at + (items[index * 5 + 1] as number)),
        out,
        index * clusterSize,
      );
      if (detail !== undefined) {
        return fail({
          piece: index,
          kind: 'decode',
          detail,
          offset: items[index * 5] as number,
          length: 0,
        });
      }
      guestBytes += items[index * 5 + 4] as number;
    }
    first = last;
  }
  // Write: runs of guest-contiguous, not all-zero pieces (adjacent in `out` too).
  if (!scratch.zeros || scratch.zeros.byteLength < clusterSize) {
    scratch.zeros = new Uint8Array(clusterSize);
  }
  const zeros = scratch.zeros;
  let bytesWritten = 0;
  let runGuest = 0;
  let runFrom = 0;
  let runLength = 0;
  let runPiece = 0;
  const flush = (): FileJobFailure | undefined => {
    for (let done = 0; done < runLength; ) {
      try {
        const length = Math.min(runLength - done, WRITE_LIMIT - ((runGuest + done) % WRITE_LIMIT));
        done += io.writeSync(job.outFd, out, runFrom + done, length, runGuest + done);
      } catch (error) {
        const { code, message } = error as { code?: string; message?: string };
        return {
          piece: runPiece,
          kind: 'write',
          detail: String(message),
          code,
          offset: runGuest + done,
          length: runLength,
        };
      }
    }
    bytesWritten += runLength;
    runLength = 0;
    return undefined;
  };
  for (let index = 0; index < count; index++) {
    const guest = items[index * 5 + 3] as number;
    const length = items[index * 5 + 4] as number;
    const from = index * clusterSize + guest - (items[index * 5 + 2] as number);
    // Data almost always has a non-zero first or last byte: memcmp only when not.
    const zero =
      out[from] === 0 &&
      out[from + length - 1] === 0 &&
      Buffer.compare(out.subarray(from, from + length), zeros.subarray(0, length)) === 0;
    if (zero) continue;
    if (runLength > 0 && runGuest + runLength === guest && runFrom + runLength === from) {
      runLength += length;
      continue;
    }
    const failure = flush();
    if (failure) return fail(failure);
    runGuest = guest;
    runFrom = from;
    runLength = length;
    runPiece = index;
  }
  const failure = flush();
  if (failure) return fail(failure);
  return { guestBytes, bytesWritten };
}
