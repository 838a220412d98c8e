import { SECTOR_SIZE } from '../format/stream-format.js';

/**
 * The source of one scan worker (see file-scanner.ts), run with `eval: true`: a string,
 * so the bundled CLI needs no worker file next to its chunks. It reads both files
 * with synchronous preads into two small buffers (they stay in the core's cache, so
 * the kernel's copy and the compare after it cost little), compares them, and
 * answers each task with the first and last differing sector, or the read error.
 *
 * workerData: { fromFd, toFd, fromLimit, pieceSize, claims }. Task: { id, slot, pieces }
 * with pieces a flat [offset, fromAt, toAt, length, ...]: the disk range [offset,
 * offset + length) is at fromAt in the "from" file and at toAt in the "to" file (the
 * same offsets for two raw disks; host offsets for QCOW2 clusters), or reads as zeros
 * on that side when its offset is -1. Sector-aligned, in disk order; posted to every
 * worker, done by the one that claims it (claims[slot] from id to -1, see FileScanner).
 * Answer: { id, first, last } (disk offsets of sectors, -1 when all equal) or
 * { id, error: { side, offset, code, message, syscall, errno } }. "from" reads as
 * zeros at and past fromLimit (a raw disk that grew between the snapshots); a read
 * that ends early elsewhere is a SHORT_READ (the file shrank while being read).
 */
export const SCAN_WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { readSync } = require('node:fs');
const SECTOR = ${SECTOR_SIZE};
const { fromFd, toFd, fromLimit, pieceSize, claims } = workerData;
const a = Buffer.allocUnsafeSlow(pieceSize);
const b = Buffer.allocUnsafeSlow(pieceSize);

function fill(side, fd, into, length, position, limit) {
  if (position < 0) {
    into.fill(0, 0, length);
    return;
  }
  const inside = Math.max(0, Math.min(length, limit - position));
  let done = 0;
  try {
    while (done < inside) {
      const count = readSync(fd, into, done, inside - done, position + done);
      if (count === 0) {
        const error = new Error('file ended after ' + (position + done) + ' bytes while reading ' +
          length + ' bytes at ' + position + '; did it shrink while being read?');
        error.code = 'SHORT_READ';
        throw error;
      }
      done += count;
    }
  } catch (error) {
    error.side = side;
    error.offset = position + done;
    error.length = length;
    throw error;
  }
  if (inside < length) into.fill(0, inside, length);
}

function differs(start, end) {
  return a.compare(b, start, end, start, end) !== 0;
}

function firstSector(length) {
  for (let sector = 0; sector < length; sector += SECTOR) {
    if (differs(sector, sector + SECTOR)) return sector;
  }
  return -1;
}

function lastSector(length) {
  for (let sector = length - SECTOR; sector >= 0; sector -= SECTOR) {
    if (differs(sector, sector + SECTOR)) return sector;
  }
  return -1;
}

parentPort.on('message', ({ id, slot, pieces }) => {
  // Every worker gets every task: the first to get here takes it.
  if (Atomics.compareExchange(claims, slot, id, -1) !== id) return;
  let first = -1;
  let last = -1;
  try {
    for (let index = 0; index < pieces.length; index += 4) {
      const offset = pieces[index];
      const fromAt = pieces[index + 1];
      const toAt = pieces[index + 2];
      const total = pieces[index + 3];
      for (let done = 0; done < total; done += pieceSize) {
        const length = Math.min(pieceSize, total - done);
        fill('from', fromFd, a, length, fromAt < 0 ? -1 : fromAt + done, fromLimit);
        fill('to', toFd, b, length, toAt < 0 ? -1 : toAt + done, Infinity);
        if (!differs(0, length)) continue;
        if (first < 0) first = offset + done + firstSector(length);
        last = offset + done + lastSector(length);
      }
    }
  } catch (error) {
    parentPort.postMessage({
      id,
      error: {
        side: error.side,
        offset: error.offset,
        length: error.length,
        code: error.code,
        message: String((error && error.message) || error),
        syscall: error.syscall,
        errno: error.errno,
      },
    });
    return;
  }
  parentPort.postMessage({ id, first, last });
});
`;
