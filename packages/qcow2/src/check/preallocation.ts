import type { PreallocationMode } from './report.js';
import type { ActiveStats } from './walk-tables.js';

/**
 * How the image was preallocated, from its allocation pattern (as qcow2-dump
 * does): `off` when some guest cluster maps to nothing; otherwise `metadata`
 * when the host file is mostly sparse (tables written, data clusters only
 * reserved), `full` when the host file is allocated too (`full` and `falloc`
 * look alike here, as do images whose every cluster the guest has written).
 */
export function detectPreallocation(
  stats: ActiveStats,
  virtualSize: number,
  clusterSize: number,
  allocatedFileBytes: number | undefined,
): PreallocationMode {
  const virtualClusters = Math.ceil(virtualSize / clusterSize);
  if (virtualClusters === 0) return 'off';
  if (stats.unmapped > 0 || stats.compressed > 0 || stats.mapped < virtualClusters) return 'off';
  if (allocatedFileBytes === undefined) return 'full';
  return allocatedFileBytes >= 0.9 * virtualClusters * clusterSize ? 'full' : 'metadata';
}
