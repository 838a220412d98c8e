import { type BlockDevice, forEachConcurrent } from '@x/blockio';
import type { Qcow2ImageState } from '../image/image-state.js';
import type { GuestMapping } from './guest-mapping.js';

/** Runs of one request read (or inflated) at once; bounds memory for huge reads. */
const RUN_CONCURRENCY = 8;
/** Inflated clusters kept for reads that take a cluster in several pieces. */
const DECOMPRESSED_CACHE_ENTRIES = 8;
/** Compressed clusters read together when they lie this close in the file… */
const COMPRESSED_GAP = 4096;
/** …up to this many bytes per read. */
const COMPRESSED_SPAN = 4 << 20;

type CompressedInputs = Map<GuestMapping, Promise<Buffer>>;

/**
 * Reads guest bytes [offset, offset + into.byteLength) of `image` into `into`.
 * Works one L2 table's coverage at a time: looks up the merged runs, then reads
 * each contiguous host run with one request, inflates compressed clusters on
 * the image's worker pool, fills zeros, and reads unallocated runs from the backing
 * device (zeros past its end, or when there is none).
 */
export async function readGuestRange(
  image: Qcow2ImageState,
  offset: number,
  into: Uint8Array,
): Promise<void> {
  const end = offset + into.byteLength;
  const coverage = image.geometry.l2Coverage;
  const runs: GuestMapping[] = [];
  let position = offset;
  while (position < end) {
    const sliceEnd = Math.min(end, (Math.floor(position / coverage) + 1) * coverage);
    runs.length = 0;
    await image.mapWithinL2(position, sliceEnd, runs);
    const target = (run: GuestMapping) =>
      into.subarray(run.offset - offset, run.offset - offset + run.length);
    if (runs.length === 1) {
      const run = runs[0] as GuestMapping;
      await readRun(image, run, target(run), undefined);
    } else {
      const inputs = readCompressedInputs(image, runs);
      await forEachConcurrent(runs, RUN_CONCURRENCY, (run) =>
        readRun(image, run, target(run), inputs),
      );
    }
    position = sliceEnd;
  }
}

/**
 * Compressed clusters written one after another (qemu-img convert -c, e2image)
 * sit back to back in the file: read each such group with one request instead
 * of one per cluster. Clusters already inflated in the cache are skipped.
 */
function readCompressedInputs(image: Qcow2ImageState, runs: GuestMapping[]): CompressedInputs {
  const inputs: CompressedInputs = new Map();
  let group: GuestMapping[] = [];
  const descriptorOf = (run: GuestMapping) =>
    (run.compressed as NonNullable<GuestMapping['compressed']>).descriptor;
  const flush = () => {
    if (group.length >= 2) {
      const start = descriptorOf(group[0] as GuestMapping).offset;
      const last = descriptorOf(group[group.length - 1] as GuestMapping);
      const end = Math.min(image.file.size, last.offset + last.length);
      const read = image.file.read(start, end - start);
      for (const run of group) {
        const descriptor = descriptorOf(run);
        const from = descriptor.offset - start;
        const input = read.then((bytes) =>
          bytes.subarray(from, Math.min(bytes.byteLength, from + descriptor.length)),
        );
        // Consumers that never come (an earlier run failed) must not leave an
        // unhandled rejection behind.
        input.catch(() => {});
        inputs.set(run, input);
      }
    }
    group = [];
  };
  for (const run of runs) {
    if (run.type !== 'compressed' || image.decompressedClusters.has(descriptorOf(run).offset)) {
      flush();
      continue;
    }
    const descriptor = descriptorOf(run);
    const first = group[0];
    const previous = group[group.length - 1];
    if (previous && first) {
      const previousEnd = descriptorOf(previous).offset + descriptorOf(previous).length;
      if (
        descriptor.offset < descriptorOf(previous).offset ||
        descriptor.offset - previousEnd > COMPRESSED_GAP ||
        descriptor.offset + descriptor.length - descriptorOf(first).offset > COMPRESSED_SPAN
      ) {
        flush();
      }
    }
    group.push(run);
  }
  flush();
  return inputs;
}

async function readRun(
  image: Qcow2ImageState,
  run: GuestMapping,
  target: Uint8Array,
  inputs: CompressedInputs | undefined,
): Promise<void> {
  switch (run.type) {
    case 'normal':
      await image.dataFile.read(run.hostOffset as number, target);
      return;
    case 'zero-plain':
    case 'zero-alloc':
      target.fill(0);
      return;
    case 'unallocated':
      if (image.backing) await readBacking(image.backing, run.offset, target);
      else target.fill(0);
      return;
    case 'compressed': {
      const cluster = await compressedCluster(image, run, target.byteLength, inputs?.get(run));
      const start = run.offset - (run.compressed?.clusterOffset ?? run.offset);
      target.set(cluster.subarray(start, start + target.byteLength));
      return;
    }
  }
}

/** Reads from a backing device that may be shorter than the image: zeros past its end. */
export async function readBacking(
  backing: BlockDevice,
  offset: number,
  target: Uint8Array,
): Promise<void> {
  const inside = Math.max(0, Math.min(target.byteLength, backing.size - offset));
  if (inside > 0) await backing.read(offset, target.subarray(0, inside));
  if (inside < target.byteLength) target.fill(0, inside);
}

/** The inflated cluster a compressed run belongs to. */
function compressedCluster(
  image: Qcow2ImageState,
  run: GuestMapping,
  wanted: number,
  input: Promise<Buffer> | undefined,
): Promise<Buffer> {
  const compressed = run.compressed;
  if (!compressed) throw new Error('internal error: compressed run without a descriptor');
  const key = compressed.descriptor.offset;
  const cache = image.decompressedClusters;
  const cached = cache.get(key);
  if (cached) return cached;
  const inflated = inflate(image, run, input);
  // Whole-cluster reads (sequential copies) will not come back for this cluster.
  if (wanted < image.geometry.clusterSize) {
    cache.set(key, inflated);
    inflated.catch(() => cache.delete(key));
    if (cache.size > DECOMPRESSED_CACHE_ENTRIES) {
      cache.delete(cache.keys().next().value as number);
    }
  }
  return inflated;
}

async function inflate(
  image: Qcow2ImageState,
  run: GuestMapping,
  prefetched: Promise<Buffer> | undefined,
): Promise<Buffer> {
  const { descriptor, clusterOffset } = run.compressed as NonNullable<GuestMapping['compressed']>;
  // The last sector may reach past the end of the file; QEMU reads it as zeros.
  const length = Math.min(descriptor.length, image.file.size - descriptor.offset);
  const input = prefetched ? await prefetched : await image.file.read(descriptor.offset, length);
  return image.inflateSlots.run(() =>
    image.inflatePool.inflateOne(input, {
      path: image.name,
      offset: descriptor.offset,
      guestOffset: clusterOffset,
    }),
  );
}
