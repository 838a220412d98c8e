import { readSync } from 'node:fs';
import { BlockIoError, type FileDevice, fromSystemError } from '@x/blockio';
import { firstDifferingSector, lastDifferingSector } from './compare.js';
import type { ScanResult } from './file-scanner.js';
import type { HostFiles, LocatedSpan } from './host-files.js';
import type { Span } from './ranges.js';

/** Bytes of each file read at a time: both pieces stay in a core's L2 cache while compared. */
export const HOST_PIECE_SIZE = 64 << 10;

/** One piece of a located span: disk offset `s` (object-relative), `done` bytes into the span. */
interface Piece {
  span: LocatedSpan;
  done: number;
  s: number;
  length: number;
}

/**
 * Compares the `located` spans of one object (starting at disk offset `start`) on
 * this thread, reading the host files with synchronous preads, HOST_PIECE_SIZE of
 * each at a time: the kernel's copy lands in the cache and the compare reads it from
 * there, as `cat` pays, and no request goes through libuv's pool (whose threads are
 * left to write the stream meanwhile).
 *
 * The record runs from the first differing sector to the last, and what lies between
 * is "to"'s bytes whatever "from" holds there: so the pieces are compared from the
 * start up to the first difference and from the end back to the last one, and between
 * those only "to" is read — straight into `buffers.to` (object-sized), which then holds
 * the record's compared spans. A wholly rewritten object costs its "to" side and two
 * pieces of "from", not both sides whole. `unread` counts the "from" bytes so left
 * unread. Object-relative result.
 */
export function scanHostFiles(
  files: HostFiles,
  start: number,
  located: readonly LocatedSpan[],
  buffers: { fromPiece: Buffer; toPiece: Buffer; to: Buffer },
): ScanResult & { unread: number } {
  const pieceSize = Math.min(HOST_PIECE_SIZE, buffers.fromPiece.byteLength);
  const pieces: Piece[] = [];
  for (const span of located) {
    for (let done = 0; done < span.length; done += pieceSize) {
      const length = Math.min(pieceSize, span.length - done);
      pieces.push({ span, done, s: span.offset - start + done, length });
    }
  }
  // Forwards to the first difference; "to" into the small piece until then.
  let firstIndex = -1;
  let first = -1;
  let last = -1;
  for (let index = 0; index < pieces.length && firstIndex < 0; index++) {
    const piece = pieces[index] as Piece;
    const fromBytes = readPiece(
      files.from,
      piece,
      'from',
      buffers.fromPiece.subarray(0, piece.length),
    );
    const toBytes = readPiece(files.to, piece, 'to', buffers.toPiece.subarray(0, piece.length));
    if (fromBytes.equals(toBytes)) continue;
    const whole: Span[] = [[0, piece.length]];
    firstIndex = index;
    first = piece.s + firstDifferingSector(fromBytes, toBytes, whole);
    last = piece.s + lastDifferingSector(fromBytes, toBytes, whole);
    buffers.to.set(toBytes, piece.s);
  }
  if (firstIndex < 0) return { first: -1, last: -1, unread: 0 };
  // Backwards from the end to the last difference, "to" kept in place.
  let lastIndex = firstIndex;
  for (let index = pieces.length - 1; index > firstIndex; index--) {
    const piece = pieces[index] as Piece;
    const fromBytes = readPiece(
      files.from,
      piece,
      'from',
      buffers.fromPiece.subarray(0, piece.length),
    );
    const toBytes = readPiece(
      files.to,
      piece,
      'to',
      buffers.to.subarray(piece.s, piece.s + piece.length),
    );
    if (fromBytes.equals(toBytes)) continue;
    lastIndex = index;
    last = piece.s + lastDifferingSector(fromBytes, toBytes, [[0, piece.length]]);
    break;
  }
  // Between them only "to", in reads as large as the spans allow.
  let unread = 0;
  let index = firstIndex + 1;
  while (index < lastIndex) {
    const head = pieces[index] as Piece;
    let length = 0;
    while (index < lastIndex && (pieces[index] as Piece).span === head.span) {
      length += (pieces[index] as Piece).length;
      index++;
    }
    readPiece(files.to, { ...head, length }, 'to', buffers.to.subarray(head.s, head.s + length));
    unread += length;
  }
  return { first, last, unread };
}

/** A piece of one side into `into`: read from its file, or zeros where that side reads so. */
function readPiece(file: FileDevice, piece: Piece, side: 'from' | 'to', into: Buffer): Buffer {
  const at = piece.span[side];
  if (at < 0) into.fill(0);
  else readFileAt(file, at + piece.done, into);
  return into;
}

/** Fills `into` from `file` at `position`; a file that ends early is SHORT_READ. */
function readFileAt(file: FileDevice, position: number, into: Buffer): void {
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
