import { type LongRunningOptions, ProgressTracker, throwIfAborted } from '@x/blockio';
import type { Qcow2Image } from '../image/qcow2-image.js';
import type { GuestMapping } from '../read/guest-mapping.js';

/** How the guest's bytes are stored in this image alone (backing files not counted). */
export interface AllocationFigures {
  /** Guest bytes held in normal (uncompressed) clusters. */
  'data-bytes': number;
  /** Guest bytes held in compressed clusters. */
  'compressed-bytes': number;
  /** Guest bytes that read as zero through the zero flag. */
  'zero-bytes': number;
  /** Guest bytes not allocated here (backing file or zeros). */
  'unallocated-bytes': number;
  /** Guest clusters with a host cluster or compressed data (what qemu-img check counts). */
  'allocated-clusters': number;
  'compressed-clusters': number;
  /** Allocated clusters not stored right after the previous one (qemu-img check's figure). */
  'fragmented-clusters': number;
  /** fragmented / allocated, in percent with two decimals. */
  'fragmented-percent': number;
  /** compressed / allocated, in percent with two decimals. */
  'compressed-percent': number;
}

/**
 * Walks the L1/L2 tables (through the bounded L2 cache) and counts what the
 * guest's bytes are stored as, plus qemu-img check's fragmentation figure: an
 * allocated cluster is fragmented when its host offset does not follow the
 * previous allocated cluster's; compressed clusters always are.
 */
export async function allocationFigures(
  image: Qcow2Image,
  options: LongRunningOptions = {},
): Promise<AllocationFigures> {
  const { clusterSize, l2Coverage } = image.geometry;
  const figures: AllocationFigures = {
    'data-bytes': 0,
    'compressed-bytes': 0,
    'zero-bytes': 0,
    'unallocated-bytes': 0,
    'allocated-clusters': 0,
    'compressed-clusters': 0,
    'fragmented-clusters': 0,
    'fragmented-percent': 0,
    'compressed-percent': 0,
  };
  const progress = new ProgressTracker('allocation', image.size, options.onProgress);
  const runs: GuestMapping[] = [];
  let nextContiguous = 0;
  let lastCluster = -1;
  for (let position = 0; position < image.size; ) {
    throwIfAborted(options.signal, image.name);
    const sliceEnd = Math.min(image.size, position - (position % l2Coverage) + l2Coverage);
    runs.length = 0;
    await image.mapWithinL2(position, sliceEnd, runs);
    for (const run of runs) {
      switch (run.type) {
        case 'normal':
        case 'zero-alloc': {
          figures[run.type === 'normal' ? 'data-bytes' : 'zero-bytes'] += run.length;
          // Count each guest cluster once (extended L2 runs may cover parts of one).
          const firstCluster = Math.floor(run.offset / clusterSize);
          const endCluster = Math.ceil((run.offset + run.length) / clusterSize);
          const host = (run.hostOffset as number) - (run.offset % clusterSize);
          for (let cluster = firstCluster; cluster < endCluster; cluster++) {
            if (cluster === lastCluster) continue;
            lastCluster = cluster;
            const hostCluster = host + (cluster - firstCluster) * clusterSize;
            figures['allocated-clusters']++;
            if (nextContiguous !== 0 && hostCluster !== nextContiguous) {
              figures['fragmented-clusters']++;
            }
            nextContiguous = hostCluster + clusterSize;
          }
          break;
        }
        case 'compressed': {
          figures['compressed-bytes'] += run.length;
          const cluster = Math.floor(run.offset / clusterSize);
          if (cluster !== lastCluster) {
            lastCluster = cluster;
            figures['allocated-clusters']++;
            figures['compressed-clusters']++;
            figures['fragmented-clusters']++;
          }
          break;
        }
        case 'zero-plain':
          figures['zero-bytes'] += run.length;
          break;
        case 'unallocated':
          figures['unallocated-bytes'] += run.length;
          break;
      }
    }
    progress.advance(sliceEnd - position);
    position = sliceEnd;
  }
  const allocated = figures['allocated-clusters'];
  if (allocated > 0) {
    figures['fragmented-percent'] =
      Math.round((figures['fragmented-clusters'] * 10000) / allocated) / 100;
    figures['compressed-percent'] =
      Math.round((figures['compressed-clusters'] * 10000) / allocated) / 100;
  }
  progress.finish();
  return figures;
}
