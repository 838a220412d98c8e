import type { ImageAnalysis } from '../check/analyse.js';
import type { FindingKind } from '../check/report.js';

/**
 * Findings that mean some table the check walked (or could not walk) may
 * reference clusters it did not count: a damaged L1/L2 entry lost the table or
 * cluster it used to point at, a damaged snapshot entry hides its whole L1
 * tree, an entry aliasing other metadata or another entry replaced its own
 * cluster, a damaged bitmap directory hides its tables. Their clusters then
 * look leaked; freeing them would hand the lost data out to the next write.
 */
const HIDES_REFERENCES: FindingKind[] = [
  'snapshot-table',
  'l1-table',
  'l1-entry',
  'l2-entry',
  'overlap',
  'reused-cluster',
  'bitmaps',
  'header',
  'read-error',
];

/**
 * Why leaks must not be freed on this image (the first damaged structure, in
 * words), or undefined when every table that could reference a cluster was
 * read and found sound.
 */
export function leaksUnsafeReason(analysis: ImageAnalysis): string | undefined {
  const { snapshotTable, findings } = analysis;
  if (snapshotTable.damaged) return 'the snapshot table is damaged';
  const snapshot = snapshotTable.snapshots.find((s) => s.damaged || !s.l1Readable);
  if (snapshot !== undefined) {
    const finding = findings
      .kept('snapshot-table')
      .find((f) => f.message.startsWith(`${snapshot.label}:`));
    return `the snapshot table entry of ${snapshot.label} is damaged${finding ? ` (${finding.message.slice(snapshot.label.length + 2)})` : ''}`;
  }
  for (const kind of HIDES_REFERENCES) {
    const count = findings.count(kind);
    if (count === 0) continue;
    const first = findings.kept(kind)[0];
    const [one, many] = NAMES[kind] ?? ['damaged structure', 'damaged structures'];
    return `${count === 1 ? `there is ${one}` : `there are ${count} ${many}`}${first ? ` (${first.message})` : ''}`;
  }
  return undefined;
}

const NAMES: Partial<Record<FindingKind, [string, string]>> = {
  'snapshot-table': ['a damaged snapshot table entry', 'damaged snapshot table entries'],
  'l1-table': ['a damaged L1 table', 'L1 table faults'],
  'l1-entry': ['a damaged L1 entry', 'damaged L1 entries'],
  'l2-entry': ['a damaged L2 entry', 'damaged L2 entries'],
  overlap: ['an entry or table overlapping other metadata', 'overlaps between structures'],
  'reused-cluster': [
    'a cluster referenced twice by the active tables',
    'clusters referenced twice by the active tables',
  ],
  bitmaps: ['a damaged bitmap structure', 'damaged bitmap structures'],
  header: ['a damaged header field', 'damaged header fields'],
  'read-error': ['an unreadable structure', 'unreadable structures'],
};
