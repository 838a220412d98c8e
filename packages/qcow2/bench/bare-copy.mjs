// bare-copy.mjs STRATEGY IMAGE.qcow2 OUT.raw -- the data copy of `qcow2 convert -O raw`
// with nothing around it: where the time of the 16 GiB bench row goes (issue 18 §2).
// It copies the data extents that `qemu-img map` reports (plain qcow2, no backing file)
// into a new sparse raw file, in pieces of at most BLOCK KiB, into page-aligned buffers:
//
//   sync:BLOCK               one thread, readSync then writeSync, one reused buffer
//   lanes:K:BLOCK            K async lanes on libuv's pool, each reads into and writes
//                            from its own buffer
//   behind:SLABS:WIF[:BLOCK] reads on the pool into SLABS buffers, writes queued with WIF
//                            in flight (what copyQcow2Clusters does with WriteBehind);
//                            BLOCK defaults to 2048
//
// Time it as a whole process beside qemu-img convert -O raw, interleaved, e.g.
//   /usr/bin/time node bench/bare-copy.mjs behind:8:2 in.qcow2 /tmp/out.raw
// Findings: see convert-cases.mjs (convert-raw-16g).
import { execFileSync } from 'node:child_process';
import { readSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';

const [strategy, input, output] = process.argv.slice(2);
if (!strategy || !input || !output) {
  console.error('usage: bare-copy.mjs STRATEGY IMAGE.qcow2 OUT.raw');
  process.exit(2);
}
const map = JSON.parse(
  execFileSync('qemu-img', ['map', '--output=json', input], { encoding: 'utf8' }),
);
const extents = map.filter((extent) => extent.data && extent.offset !== undefined);
const size = JSON.parse(
  execFileSync('qemu-img', ['info', '--output=json', input], { encoding: 'utf8' }),
)['virtual-size'];
const source = await open(input, 'r');
const target = await open(output, 'wx', 0o600);
await target.truncate(size);
// Page-aligned (see @x/blockio allocateAligned).
const aligned = (length) =>
  Buffer.from(new ArrayBuffer(length, { maxByteLength: length }), 0, length);
function* pieces(block) {
  for (const extent of extents) {
    for (let at = 0; at < extent.length; at += block) {
      yield {
        guest: extent.start + at,
        host: extent.offset + at,
        length: Math.min(block, extent.length - at),
      };
    }
  }
}

const [kind, a, b, c] = strategy.split(':');
if (kind === 'sync') {
  const block = Number(a) << 10;
  const buffer = aligned(block);
  for (const { guest, host, length } of pieces(block)) {
    readSync(source.fd, buffer, 0, length, host);
    writeSync(target.fd, buffer, 0, length, guest);
  }
} else if (kind === 'lanes') {
  const block = Number(b) << 10;
  const work = pieces(block);
  await Promise.all(
    Array.from({ length: Number(a) }, async () => {
      const buffer = aligned(block);
      for (let next = work.next(); !next.done; next = work.next()) {
        const { guest, host, length } = next.value;
        await source.read(buffer, 0, length, host);
        await target.write(buffer, 0, length, guest);
      }
    }),
  );
} else if (kind === 'behind') {
  const writesInFlight = Number(b);
  const block = Number(c ?? 2048) << 10;
  const free = Array.from({ length: Number(a) }, () => aligned(block));
  const waiting = [];
  const queue = [];
  let writing = 0;
  let outstanding = 0;
  let allDone;
  const done = new Promise((resolve) => {
    allDone = resolve;
  });
  let ended = false;
  const pump = () => {
    while (writing < writesInFlight && queue.length > 0) {
      const { guest, view, buffer } = queue.shift();
      writing++;
      target.write(view, 0, view.byteLength, guest).then(() => {
        writing--;
        free.push(buffer);
        waiting.shift()?.();
        if (--outstanding === 0 && ended) allDone();
        pump();
      });
    }
  };
  for (const { guest, host, length } of pieces(block)) {
    while (free.length === 0) await new Promise((resolve) => waiting.push(resolve));
    const buffer = free.pop();
    outstanding++;
    const view = buffer.subarray(0, length);
    source.read(view, 0, length, host).then(() => {
      queue.push({ guest, view, buffer });
      pump();
    });
  }
  ended = true;
  if (outstanding > 0) await done;
} else {
  console.error(`unknown strategy ${strategy}`);
  process.exit(2);
}
await target.close();
await source.close();
