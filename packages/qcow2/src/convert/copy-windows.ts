import type { SyncFileIo } from '../sync-file-io.js';

/**
 * The data movement of a raw convert on a copy thread (see copy-threads.ts): read a
 * window of the image's data file, write the runs it holds to their guest offsets,
 * leaving all-zero blocks as holes — with synchronous system calls into one reused
 * buffer, no promise or thread-pool hand-off per request.
 *
 * A batch is a Float64Array of windows, each laid out as
 *   [host offset, length, run count, (guest offset, offset in the window, length) × runs]
 * with every window at most the buffer's size. Runs are guest- and host-contiguous
 * clusters (copyQcow2Clusters gathers them); a window may cover several runs and the
 * small gaps between them, which are read and dropped.
 *
 * `copyWindows` runs inside the worker as text (`copyWindows.toString()`, like the
 * inflate pool's decoders): it must not use anything from outside its own body.
 */

/** Where and why a batch stopped early. */
export interface WindowFailure {
  /** `short`: the data file ended inside a window (it shrank while being read). */
  kind: 'read' | 'write' | 'short';
  /** The system error's code (EIO, ENOSPC, …); undefined for `short`. */
  code: string | undefined;
  message: string;
  /** File offset of the failed request (data file for reads, output for writes). */
  offset: number;
  /** Bytes the failed request asked for. */
  length: number;
}

export interface WindowsCopied {
  /** Window bytes read (gaps included). */
  bytesRead: number;
  /** Bytes written (all-zero blocks are skipped). */
  bytesWritten: number;
  /** Set when the abort flag stopped the batch before its end. */
  aborted: boolean;
  failure: WindowFailure | undefined;
}

/** Test hooks: fail like the kernel would, at a chosen request. */
export interface WindowFaults {
  /** The write that starts at or after this output offset fails with EIO. */
  failWriteAt?: number | undefined;
}

/**
 * Copies the windows of `batch` from `source` to `target` (file descriptors) through
 * `buffer`, skipping all-zero `blockSize` blocks of each run (counted from the run's
 * start, as the guest's clusters are). Stops at the first failure, or before a window
 * once `abort[0]` is non-zero; never throws.
 */
export function copyWindows(
  io: SyncFileIo,
  source: number,
  target: number,
  buffer: Uint8Array,
  blockSize: number,
  batch: Float64Array,
  abort: Int32Array,
  faults: WindowFaults | undefined,
): WindowsCopied {
  const done: WindowsCopied = { bytesRead: 0, bytesWritten: 0, aborted: false, failure: undefined };
  const fail = (kind: WindowFailure['kind'], error: unknown, offset: number, length: number) => {
    const code = (error as { code?: unknown } | undefined)?.code;
    done.failure = {
      kind,
      code: typeof code === 'string' ? code : undefined,
      message: error instanceof Error ? error.message : String(error),
      offset,
      length,
    };
  };
  // Whole blocks of data nearly always have a non-zero first or last byte: only
  // candidates are compared in full, and only against the zeros of a fresh buffer.
  const zeros = new Uint8Array(blockSize);
  const view = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const isZero = (start: number, end: number): boolean =>
    view[start] === 0 &&
    view[end - 1] === 0 &&
    view.compare(zeros, 0, end - start, start, end) === 0;
  const write = (from: number, length: number, position: number): boolean => {
    let written = 0;
    while (written < length) {
      try {
        if (faults?.failWriteAt !== undefined && position + written >= faults.failWriteAt) {
          throw Object.assign(new Error('EIO: i/o error, write (injected)'), { code: 'EIO' });
        }
        written += io.writeSync(
          target,
          buffer,
          from + written,
          length - written,
          position + written,
        );
      } catch (error) {
        fail('write', error, position + written, length - written);
        return false;
      }
    }
    done.bytesWritten += length;
    return true;
  };
  for (let at = 0; at < batch.length; ) {
    if (Atomics.load(abort, 0) !== 0) {
      done.aborted = true;
      return done;
    }
    const host = batch[at] as number;
    const length = batch[at + 1] as number;
    const runs = batch[at + 2] as number;
    at += 3;
    let read = 0;
    while (read < length) {
      let got: number;
      try {
        got = io.readSync(source, buffer, read, length - read, host + read);
      } catch (error) {
        fail('read', error, host + read, length - read);
        return done;
      }
      if (got === 0) {
        fail('short', undefined, host + read, length);
        return done;
      }
      read += got;
    }
    done.bytesRead += length;
    for (let run = 0; run < runs; run++, at += 3) {
      const guest = batch[at] as number;
      const from = batch[at + 1] as number;
      const runLength = batch[at + 2] as number;
      // Runs of non-zero blocks, each one write.
      let start = -1;
      for (let block = 0; block < runLength; block += blockSize) {
        const end = Math.min(runLength, block + blockSize);
        const zero = isZero(from + block, from + end);
        if (!zero && start < 0) start = block;
        if (zero && start >= 0) {
          if (!write(from + start, block - start, guest + start)) return done;
          start = -1;
        }
      }
      if (start >= 0 && !write(from + start, runLength - start, guest + start)) return done;
    }
  }
  return done;
}
