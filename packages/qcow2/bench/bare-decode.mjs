// The decode-only bound of convert-raw-deflate / convert-raw-zstd (see convert-cases.mjs):
// `node bench/bare-decode.mjs <zlib|zstd> <image.qcow2> [workers]` decodes every
// compressed cluster of the image and nothing else: no plain clusters, no writes, no
// ordering. `workers` threads (default: as many as the inflate pool starts) take 16
// clusters at a time from a shared counter, read them (one read when they lie together)
// and decode them with the pool's decoders (one reused node:zlib stream; zstd by
// node:zlib where it has zstd, else libzstd in WebAssembly) into one reused buffer.
// Whole process, so start-up, WebAssembly compilation and the reads count as they do for
// `qcow2 convert`: a convert cannot take less wall time than this on the same cores.
import { closeSync, openSync, readSync } from 'node:fs';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import zlib from 'node:zlib';
import { decodeClusterInto } from '../dist/compression/cluster-decoder.js';
import { defaultInflateWorkers, inlineDecodeTools } from '../dist/compression/inflate-pool.js';

const PER_READ = 16;

async function decodeShare({ type, path, clusterSize, spans, next }) {
  const tools = await inlineDecodeTools(type);
  const fd = openSync(path, 'r');
  const input = Buffer.allocUnsafe(PER_READ * (clusterSize + 4096) + 4096);
  const out = Buffer.allocUnsafe(clusterSize);
  const count = spans.length / 2;
  let decoded = 0;
  try {
    for (;;) {
      const first = Atomics.add(next, 0, PER_READ);
      if (first >= count) break;
      const end = Math.min(count, first + PER_READ);
      decoded += end - first;
      const start = spans[2 * first];
      const stop = spans[2 * (end - 1)] + spans[2 * (end - 1) + 1];
      // qemu-img writes compressed clusters back to back: one read for 16 of them.
      const together = stop - start <= input.byteLength && stop > start;
      if (together) readSync(fd, input, 0, stop - start, start);
      for (let index = first; index < end; index++) {
        let at = spans[2 * index] - start;
        const length = spans[2 * index + 1];
        if (!together) {
          readSync(fd, input, 0, length, spans[2 * index]);
          at = 0;
        }
        const detail = decodeClusterInto(
          tools,
          type,
          input.subarray(at, at + length),
          clusterSize,
          out,
          0,
        );
        if (detail !== undefined) throw new Error(`cluster ${index}: ${detail}`);
      }
    }
  } finally {
    closeSync(fd);
  }
  return decoded;
}

if (isMainThread) {
  const [type, path, workersArgument] = process.argv.slice(2);
  if ((type !== 'zlib' && type !== 'zstd') || !path) {
    console.error('usage: bare-decode.mjs <zlib|zstd> <image.qcow2> [workers]');
    process.exit(2);
  }
  const workers = workersArgument === undefined ? defaultInflateWorkers() : Number(workersArgument);
  // The compressed clusters' host spans, in guest order (as the convert finds them).
  // The whole package is loaded here only: the workers load just the decoders.
  const { openQcow2 } = await import('../dist/index.js');
  const image = await openQcow2(path);
  const { clusterSize, l2Coverage } = image.geometry;
  const spans = [];
  for (let base = 0; base < image.size; base += l2Coverage) {
    const mappings = [];
    await image.mapWithinL2(base, Math.min(image.size, base + l2Coverage), mappings);
    for (const mapping of mappings) {
      if (mapping.type === 'compressed' && mapping.offset === mapping.compressed.clusterOffset) {
        spans.push(mapping.compressed.descriptor.offset, mapping.compressed.descriptor.length);
      }
    }
  }
  await image.close();
  const next = new Int32Array(new SharedArrayBuffer(4));
  const job = { type, path, clusterSize, spans, next };
  const started = performance.now();
  const decoded =
    workers === 0
      ? [await decodeShare(job)]
      : await Promise.all(
          Array.from(
            { length: workers },
            () =>
              new Promise((resolve, reject) => {
                const worker = new Worker(new URL(import.meta.url), { workerData: job });
                worker.once('message', resolve);
                worker.once('error', reject);
              }),
          ),
        );
  const total = decoded.reduce((sum, n) => sum + n, 0);
  const zstdBy =
    type === 'zstd' ? (zlib.zstdDecompressSync ? ' (node:zlib)' : ' (WebAssembly)') : '';
  console.error(
    `${total} ${type}${zstdBy} clusters on ${workers} workers: ${(performance.now() - started).toFixed(0)} ms after the map`,
  );
} else {
  parentPort.postMessage(await decodeShare(workerData));
}
