// The floor for create-raw, shown next to `cat` in the same run (bench.mjs): read both
// raw images and compare them, nothing else — no extents, no records, no output.
//   node bare-loop.mjs one-thread a.raw b.raw   pread 64 KiB of each on the main thread, compare
//   node bare-loop.mjs pool a.raw b.raw         pread 1 MiB of each on libuv's pool, 4 pairs in
//                                               flight, compare on the main thread
//   node bare-loop.mjs threads a.raw b.raw      one worker thread per core (at most 4), each
//                                               taking the next 4 MiB object (an atomic
//                                               counter) and reading it 128 KiB of each side
//                                               at a time, comparing as it goes: create's
//                                               method for two files (FileScanner)
// Buffers are allocated once. Prints the number of differing pieces (objects for threads).
import { closeSync, fstatSync, openSync, read, readSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

// Sizes are multiples of the piece here (the bench's disks), so no short pieces.
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readSync } = require('node:fs');
const { a, b, size, object, piece, next } = workerData;
const x = Buffer.allocUnsafeSlow(piece);
const y = Buffer.allocUnsafeSlow(piece);
const readFully = (fd, into, offset) => {
  for (let done = 0; done < piece; ) {
    const count = readSync(fd, into, done, piece - done, offset + done);
    if (count === 0) throw new Error('short read at ' + (offset + done));
    done += count;
  }
};
let differing = 0;
for (let idx = Atomics.add(next, 0, 1); idx * object < size; idx = Atomics.add(next, 0, 1)) {
  let differs = false;
  for (let offset = idx * object; offset < Math.min(size, (idx + 1) * object); offset += piece) {
    readFully(a, x, offset);
    readFully(b, y, offset);
    if (!x.equals(y)) differs = true;
  }
  if (differs) differing++;
}
parentPort.postMessage(differing);
`;

const [mode, aPath, bPath] = process.argv.slice(2);
const a = openSync(aPath, 'r');
const b = openSync(bPath, 'r');
const size = Math.min(fstatSync(a).size, fstatSync(b).size);
let differing = 0;

if (mode === 'one-thread') {
  const piece = 64 << 10;
  const x = Buffer.allocUnsafe(piece);
  const y = Buffer.allocUnsafe(piece);
  for (let offset = 0; offset < size; offset += piece) {
    const length = Math.min(piece, size - offset);
    readFully(a, x, length, offset);
    readFully(b, y, length, offset);
    if (!x.subarray(0, length).equals(y.subarray(0, length))) differing++;
  }
} else if (mode === 'pool') {
  const piece = 1 << 20;
  const depth = 4;
  const pieces = Math.ceil(size / piece);
  const slots = Array.from({ length: depth }, () => [
    Buffer.allocUnsafe(piece),
    Buffer.allocUnsafe(piece),
  ]);
  const inFlight = [];
  let issued = 0;
  const issue = () => {
    const index = issued++;
    const offset = index * piece;
    const length = Math.min(piece, size - offset);
    const [x, y] = slots[index % depth];
    inFlight.push(
      Promise.all([readAsync(a, x, length, offset), readAsync(b, y, length, offset)]).then(() => [
        x.subarray(0, length),
        y.subarray(0, length),
      ]),
    );
  };
  while (issued < Math.min(depth, pieces)) issue();
  for (let index = 0; index < pieces; index++) {
    const [x, y] = await inFlight.shift();
    if (!x.equals(y)) differing++;
    if (issued < pieces) issue();
  }
} else if (mode === 'threads') {
  const object = 4 << 20;
  const next = new Int32Array(new SharedArrayBuffer(4));
  const workerData = { a, b, size, object, piece: 128 << 10, next };
  const threads = Math.min(4, availableParallelism());
  const counts = await Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise((resolve, reject) => {
          const worker = new Worker(THREAD_SOURCE, { eval: true, workerData });
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
    ),
  );
  differing = counts.reduce((sum, count) => sum + count, 0);
} else {
  throw new Error(`usage: bare-loop.mjs one-thread|pool|threads a.raw b.raw (not ${mode})`);
}
closeSync(a);
closeSync(b);
console.log(`${differing} differing pieces`);

function readFully(fd, into, length, offset) {
  let done = 0;
  while (done < length) {
    const count = readSync(fd, into, done, length - done, offset + done);
    if (count === 0) throw new Error(`short read at ${offset + done}`);
    done += count;
  }
}

function readAsync(fd, into, length, offset) {
  return new Promise((resolve, reject) => {
    read(fd, into, 0, length, offset, (error, count) => {
      if (error) reject(error);
      else if (count !== length) reject(new Error(`short read at ${offset}`));
      else resolve();
    });
  });
}
