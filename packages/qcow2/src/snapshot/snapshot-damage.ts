import type { ImageAnalysis } from '../check/analyse.js';
import { formatFinding } from '../check/format-report.js';
import type { MetadataExtent, MetadataKind } from '../check/metadata-map.js';
import {
  CHECK_EXIT_FLAGGED,
  FINDING_EXIT_CODES,
  FINDING_KINDS,
  type FindingKind,
} from '../check/report.js';
import type { SnapshotInfo } from '../check/snapshot-table.js';
import { forEachTable, walkOwners } from '../check/table-iterator.js';
import { decodeCompressedDescriptor, entryOffset } from '../format/table-entries.js';
import { clusterKind, readL2Entry } from '../write/l2-entries.js';

/** One kind of damage check found, with its first occurrence spelled out. */
export interface SnapshotApplyDamage {
  kind: FindingKind;
  count: number;
  /** The first finding of the kind, as `qcow2 check --mode error` prints it. */
  example: string;
}

/**
 * What makes a qemu-img style apply unsafe: every finding above leaks and
 * COPIED mismatches. Such an apply drops one reference from every cluster the
 * active tables reach, so with invalid tables it fails half way, and with
 * refcounts below the references it frees clusters a snapshot still uses.
 */
export function damageBlockingApply(analysis: ImageAnalysis): SnapshotApplyDamage[] {
  const damage: SnapshotApplyDamage[] = [];
  for (const kind of FINDING_KINDS) {
    const count = analysis.findings.count(kind);
    if (count === 0 || FINDING_EXIT_CODES[kind] < CHECK_EXIT_FLAGGED) continue;
    const first = analysis.findings.kept(kind)[0];
    damage.push({ kind, count, example: first ? (formatFinding(first)[0] ?? kind) : kind });
  }
  return damage;
}

/** Entry-level findings that condemn the tables they are found in. */
const TABLE_FINDINGS: FindingKind[] = [
  'l1-entry',
  'l2-entry',
  'extended-l2-bitmap',
  'v2-zero-flag',
  'read-error',
];

/** Structures a rescue replaces or abandons: the snapshot may overlap them without harm. */
const REPLACED: ReadonlySet<MetadataKind> = new Set<MetadataKind>([
  'active L1 table',
  'active L2 table',
  'refcount table',
  'refcount block',
]);

const MAX_PROBLEMS = 20;

/**
 * Why the snapshot's tables cannot be trusted as the new active state, or an
 * empty list. `analysis` must be scoped to the snapshot (`snapshot: info.id`)
 * so its entry-level findings are the snapshot's alone and none are lost to
 * the per-kind limit behind a flood of findings in the damaged active tables.
 * Checks: the snapshot table entry, every L1 and L2 entry (reserved bits,
 * alignment, inside the file), and that no L1 table, L2 table or data cluster
 * of the snapshot shares a cluster with the header, the snapshot table, an L1
 * table or (for data) an L2 table; overlaps with the active tables and the
 * refcount structures do not count, as a rescue abandons those.
 */
export async function snapshotTableProblems(
  analysis: ImageAnalysis,
  info: SnapshotInfo,
): Promise<string[]> {
  const problems: string[] = [];
  const { findings, facts, metadata } = analysis;
  for (const finding of findings.kept('snapshot-table')) {
    if (finding.entryOffset === info.entryOffset) problems.push(formatFinding(finding)[0] ?? '');
  }
  if (!info.l1Readable && problems.length === 0) {
    problems.push(`${info.label}: its L1 table cannot be read`);
  }
  for (const kind of TABLE_FINDINGS) {
    const mine = findings.kept(kind).filter((finding) => finding.owner === info.id);
    for (const finding of mine) problems.push(formatFinding(finding)[0] ?? kind);
    const unlisted = findings.count(kind) - findings.kept(kind).length;
    if (unlisted > 0) problems.push(`${unlisted} more ${kind} findings in ${info.label}`);
  }
  if (problems.length > 0 || info.l1Entries === 0) return problems.slice(0, MAX_PROBLEMS);

  const clusterSize = facts.clusterSize;
  const hex = (value: number) => `0x${value.toString(16)}`;
  let overflow = 0;
  const conflict = (
    cluster: number,
    what: string,
    allowed: (extent: MetadataExtent) => boolean,
  ): void => {
    if (!metadata.touches(cluster, 1)) return;
    for (const extent of metadata.at(cluster)) {
      if (allowed(extent)) continue;
      const other =
        extent.owner >= 0 && extent.owner !== info.index
          ? `${extent.kind} of snapshot #${extent.owner}`
          : extent.kind;
      if (problems.length < MAX_PROBLEMS) {
        problems.push(
          `${info.label}: ${what} shares host cluster ${cluster} (${hex(cluster * clusterSize)}) with the ${other}`,
        );
      } else {
        overflow++;
      }
    }
  };
  const ownL1 = (extent: MetadataExtent) =>
    REPLACED.has(extent.kind) ||
    (extent.kind === 'inactive L1 table' && extent.owner === info.index);
  const first = Math.floor(info.l1Offset / clusterSize);
  const last = Math.floor((info.l1Offset + info.l1Entries * 8 - 1) / clusterSize);
  for (let cluster = first; cluster <= last; cluster++) conflict(cluster, 'its L1 table', ownL1);

  const owner = walkOwners(facts, analysis.snapshotTable.snapshots, info.id).find(
    (candidate) => candidate.owner === info.index,
  );
  if (owner === undefined) return problems;
  const seenL2 = new Map<number, number>();
  const { l2Entries, extendedL2, clusterBits } = facts.geometry;
  const l2Allowed = (extent: MetadataExtent) =>
    REPLACED.has(extent.kind) || extent.kind === 'inactive L2 table';
  const dataAllowed = (extent: MetadataExtent) => REPLACED.has(extent.kind);
  await forEachTable(analysis.file, facts, owner, {
    l1: (index, hi, lo) => {
      const cluster = Math.floor(entryOffset(hi, lo) / clusterSize);
      const previous = seenL2.get(cluster);
      if (previous !== undefined && problems.length < MAX_PROBLEMS) {
        problems.push(
          `${info.label}: L1 entries ${previous} and ${index} point at the same L2 table (${hex(cluster * clusterSize)})`,
        );
      }
      seenL2.set(cluster, index);
      conflict(cluster, `the L2 table of L1 entry ${index}`, l2Allowed);
    },
    l2: ({ table, l1Index }) => {
      if (facts.dataFile) return;
      for (let i = 0; i < l2Entries; i++) {
        const entry = readL2Entry(table, i, extendedL2);
        const kind = clusterKind(entry, extendedL2, false);
        const what = `the data of L2 entry ${i} (L1 index ${l1Index})`;
        if (kind === 'normal' || kind === 'zero-alloc') {
          conflict(Math.floor(entryOffset(entry.hi, entry.lo) / clusterSize), what, dataAllowed);
        } else if (kind === 'compressed') {
          const { offset, length } = decodeCompressedDescriptor(entry.hi, entry.lo, clusterBits);
          const end = Math.floor((offset + length - 1) / clusterSize);
          for (let cluster = Math.floor(offset / clusterSize); cluster <= end; cluster++) {
            conflict(cluster, what, dataAllowed);
          }
        }
      }
    },
  });
  if (overflow > 0) problems.push(`and ${overflow} more overlaps`);
  return problems;
}
