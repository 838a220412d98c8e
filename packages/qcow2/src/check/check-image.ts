import { stat } from 'node:fs/promises';
import { type BlockDevice, FileDevice } from '@x/blockio';
import { type AnalyseOptions, analyseImage, type ImageAnalysis } from './analyse.js';
import { fragmentationAdvice } from './fragmentation.js';
import { locateReferences } from './locate.js';
import { detectPreallocation } from './preallocation.js';
import { type CheckReport, FINDING_KINDS, type FindingKind, verdictFor } from './report.js';

export type CheckMode = 'check' | 'error' | 'dump' | 'info';

export interface CheckImageOptions extends AnalyseOptions {
  /**
   * `check` and `info` skip locating who references a bad cluster; `error` and
   * `dump` add it (one more pass over the tables when there is something to locate).
   */
  mode?: CheckMode | undefined;
}

/**
 * Checks a QCOW2 image read-only: refcounts (leaks, errors, overflow), COPIED
 * flags, invalid L1/L2/refcount-table entries, reused clusters, overlapping
 * metadata, the snapshot table and the header flags, plus preallocation,
 * fragmentation and copy-on-write figures. Throws a Qcow2Error only when the
 * file cannot be checked at all (not qcow2, unreadable, unsupported sizes).
 */
export async function checkImage(
  path: string,
  options: CheckImageOptions = {},
): Promise<CheckReport> {
  const file = await FileDevice.open(path);
  try {
    return await checkDevice(file, options);
  } finally {
    await file.close();
  }
}

/** `checkImage` on an already open device (read-only use). */
export async function checkDevice(
  file: BlockDevice,
  options: CheckImageOptions = {},
): Promise<CheckReport> {
  const started = performance.now();
  const analysis = await analyseImage(file, options);
  if (options.mode === 'error' || options.mode === 'dump') {
    await locateReferences(
      file,
      analysis.facts,
      analysis.owners,
      analysis.metadata,
      analysis.findings,
      options.signal,
    );
  }
  let allocatedFileBytes: number | undefined;
  try {
    allocatedFileBytes = (await stat(file.name)).blocks * 512;
  } catch {
    allocatedFileBytes = undefined;
  }
  return buildReport(analysis, allocatedFileBytes, performance.now() - started);
}

/** Turns an analysis into the report (exit code, qemu-img figures, advice). */
export function buildReport(
  analysis: ImageAnalysis,
  allocatedFileBytes: number | undefined,
  elapsedMs: number,
): CheckReport {
  const { facts, findings, stats, compare, snapshotTable } = analysis;
  const exitCode = findings.exitCode();
  const counts: Partial<Record<FindingKind, number>> = {};
  let corruptions = 0;
  for (const kind of FINDING_KINDS) {
    const count = findings.count(kind);
    if (count === 0) continue;
    counts[kind] = count;
    if (kind !== 'leak' && kind !== 'corrupt-bit' && kind !== 'dirty-bit' && kind !== 'ignored')
      corruptions += count;
  }
  const snapshots = snapshotTable.snapshots.length;
  return {
    filename: facts.path,
    format: 'qcow2',
    'check-errors': findings.count('read-error'),
    corruptions,
    leaks: findings.count('leak'),
    'image-end-offset': compare.imageEndOffset,
    'total-clusters': Math.ceil(facts.virtualSize / facts.clusterSize),
    'allocated-clusters': stats.allocated,
    'fragmented-clusters': stats.fragmented,
    'compressed-clusters': stats.compressed,
    verdict: verdictFor(exitCode),
    exitCode,
    version: facts.version,
    clusterSize: facts.clusterSize,
    virtualSize: facts.virtualSize,
    fileSize: facts.fileSize,
    refcountBits: facts.geometry.refcountBits,
    corruptBit: facts.corruptBit,
    dirtyBit: facts.dirtyBit,
    lazyRefcounts: facts.lazyRefcounts,
    counts,
    findings: findings.findings(),
    truncated: findings.truncated(),
    preallocation: detectPreallocation(
      stats,
      facts.virtualSize,
      facts.clusterSize,
      allocatedFileBytes,
    ),
    snapshots,
    copyOnWrite:
      snapshots > 0
        ? { clusters: stats.exclusive, bytes: stats.exclusive * facts.clusterSize }
        : undefined,
    fragmentation: fragmentationAdvice(stats),
    suggestedRepair: suggestRepair(analysis),
    tallyBytes:
      analysis.tally.byteSize() + analysis.activeData.byteSize() + analysis.metadata.size * 33,
    elapsedMs: Math.round(elapsedMs),
  };
}

function suggestRepair(analysis: ImageAnalysis): string | undefined {
  const { findings, compare } = analysis;
  const has = (kind: FindingKind) => findings.count(kind) > 0;
  const corrupt =
    has('l1-entry') ||
    has('l2-entry') ||
    has('overlap') ||
    has('reused-cluster') ||
    has('l1-table') ||
    has('extended-l2-bitmap');
  const parts: string[] = [];
  if (
    compare.zeroStored > 0 ||
    compare.unreadable > 0 ||
    has('refcount-table-entry') ||
    has('refcount-table')
  ) {
    parts.push('qcow2 repair --rebuild-refcounts');
  } else {
    const fixes: string[] = [];
    if (has('leak')) fixes.push('frees the leaked clusters');
    if (has('refcount-error')) fixes.push('raises the refcounts below the references');
    if (has('copied')) fixes.push('fixes the COPIED flags');
    // A plain `qcow2 repair` does --leaks --refcounts --copied: name the plain command
    // and what it will do, not a list of flags the user has to copy.
    if (fixes.length > 0) parts.push(`qcow2 repair (it ${fixes.join(', ')})`);
  }
  if (corrupt)
    parts.push('inspect the corrupt entries (qcow2 check --mode error) before repairing');
  if (has('snapshot-table'))
    parts.push('the snapshot table is damaged: leaks are not freed by repair');
  if (parts.length === 0 && (has('corrupt-bit') || has('dirty-bit'))) {
    parts.push(`qcow2 set-feature --clear ${has('corrupt-bit') ? 'corrupt' : 'dirty'}`);
  }
  return parts.length > 0 ? parts.join('; ') : undefined;
}
