import type { CheckReport } from './report.js';
import type { ActiveStats } from './walk-tables.js';

/** Below this many allocated clusters a rewrite is never worth suggesting. */
const MIN_CLUSTERS_FOR_ADVICE = 256;
/** Share of out-of-order clusters from which sequential reads suffer noticeably. */
const FRAGMENTED_PERCENT_FOR_REWRITE = 25;

/**
 * qemu-img's fragmentation figure (clusters whose host offset does not follow
 * the previous cluster of the same L2 table, compressed clusters always
 * counted) and whether rewriting the image would help.
 */
export function fragmentationAdvice(stats: ActiveStats): CheckReport['fragmentation'] {
  const percent = stats.allocated === 0 ? 0 : (stats.fragmented * 100) / stats.allocated;
  const rounded = Math.round(percent * 100) / 100;
  if (stats.allocated < MIN_CLUSTERS_FOR_ADVICE) {
    return {
      percent: rounded,
      rewriteRecommended: false,
      reason: 'too little data for layout to matter',
    };
  }
  if (stats.compressed * 2 > stats.allocated) {
    return {
      percent: rounded,
      rewriteRecommended: false,
      reason: 'mostly compressed clusters, which are fragmented by nature',
    };
  }
  const plainFragmented = stats.fragmented - stats.compressed;
  const plainPercent = (plainFragmented * 100) / Math.max(1, stats.allocated - stats.compressed);
  if (plainPercent >= FRAGMENTED_PERCENT_FOR_REWRITE) {
    return {
      percent: rounded,
      rewriteRecommended: true,
      reason: `${plainPercent.toFixed(1)}% of data clusters are out of guest order; \`qcow2 convert -O qcow2\` would lay them out sequentially`,
    };
  }
  return {
    percent: rounded,
    rewriteRecommended: false,
    reason: `${plainPercent.toFixed(1)}% of data clusters are out of guest order; a rewrite would gain little`,
  };
}
