// The floor for create-raw, shown next to `cat` in the same run (bench.mjs): read both
// raw images and compare them, nothing else — no extents, no records, no output.
//   node bare-loop.mjs one-thread a.raw b.raw   pread 64 KiB of each on the main thread, compare
//   node bare-loop.mjs pool a.raw b.raw         pread 1 MiB of each on libuv's pool, 4 pairs in
//                                               flight, compare on the main thread
// Buffers are allocated once. Prints the number of differing pieces.
import { closeSync, fstatSync, openSync, read, readSync } from 'node:fs';

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
} else {
  throw new Error(`usage: bare-loop.mjs one-thread|pool a.raw b.raw (not ${mode})`);
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
