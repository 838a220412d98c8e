import { readSync } from 'node:fs';
import { BlockIoError, type FileDevice, fromSystemError } from '@x/blockio';
import { firstDifferingSector, lastDifferingSector } from './compare.js';
import type { ScanResult } from './file-scanner.js';
import type { HostFiles, LocatedSpan } from './host-files.js';
import type { Span } from './ranges.js';

/** Bytes of each file read at a time: both pieces stay in a core's L2 cache while compared. */
export const HOST_PIECE_SIZE = 64 << 10;

/**
 * Compares the `located` spans of one object (starting at disk offset `start`) on
 * this thread, reading the host files with synchronous preads, HOST_PIECE_SIZE of
 * each at a time: the kernel's copy lands in the cache and the compare reads it from
 * there, as `cat` pays, and no request goes through libuv's pool (whose threads are
 * left to write the stream meanwhile). As compareObject's own loop does, "to"'s bytes
 * from the first difference on are kept in `record` (object-sized), so the record
 * needs no second read. `fromPiece` and `toPiece` hold at least HOST_PIECE_SIZE.
 * Object-relative result.
 */
export function scanHostFiles(
  files: HostFiles,
  start: number,
  located: readonly LocatedSpan[],
  buffers: { fromPiece: Buffer; toPiece: Buffer; to: Buffer },
): ScanResult {
  const pieceSize = Math.min(HOST_PIECE_SIZE, buffers.fromPiece.byteLength);
  let first = -1;
  let last = -1;
  for (const span of located) {
    for (let done = 0; done < span.length; done += pieceSize) {
      const length = Math.min(pieceSize, span.length - done);
      const s = span.offset - start + done;
      const fromBytes = buffers.fromPiece.subarray(0, length);
      // Whole-object pieces (toPiece is the record buffer) always land in place.
      const keep = first >= 0 || buffers.toPiece === buffers.to;
      const toBytes = keep
        ? buffers.to.subarray(s, s + length)
        : buffers.toPiece.subarray(0, length);
      readFileAt(files.from, span.from < 0 ? -1 : span.from + done, fromBytes);
      readFileAt(files.to, span.to < 0 ? -1 : span.to + done, toBytes);
      if (fromBytes.equals(toBytes)) continue;
      const whole: Span[] = [[0, length]];
      if (first < 0) {
        first = s + firstDifferingSector(fromBytes, toBytes, whole);
        if (!keep) buffers.to.set(toBytes, s);
      }
      last = s + lastDifferingSector(fromBytes, toBytes, whole);
    }
  }
  return { first, last };
}

/** Fills `into` from `file` at `position` (zeros for -1); a file that ends early is SHORT_READ. */
function readFileAt(file: FileDevice, position: number, into: Buffer): void {
  if (position < 0) {
    into.fill(0);
    return;
  }
  let done = 0;
  while (done < into.byteLength) {
    let count: number;
    try {
      count = readSync(file.handle.fd, into, done, into.byteLength - done, position + done);
    } catch (error) {
      throw fromSystemError(error, `read ${into.byteLength} bytes`, {
        path: file.name,
        offset: position + done,
      });
    }
    if (count === 0) {
      throw new BlockIoError(
        'SHORT_READ',
        `file ended after ${position + done} bytes while reading ${into.byteLength} bytes at ${position}; did it shrink while being read?`,
        { path: file.name, offset: position + done },
      );
    }
    done += count;
  }
}
