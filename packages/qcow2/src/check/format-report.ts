import type { CheckMode } from './check-image.js';
import type { CheckFinding, CheckReport, FindingKind } from './report.js';

const hex = (value: number) => `0x${value.toString(16)}`;

const KIND_WORDS: Record<FindingKind, [string, string]> = {
  ignored: ['oddity QEMU ignores', 'oddities QEMU ignores'],
  leak: ['leaked cluster', 'leaked clusters'],
  copied: ['COPIED flag mismatch', 'COPIED flag mismatches'],
  'corrupt-bit': ['corrupt bit', 'corrupt bits'],
  'dirty-bit': ['dirty bit', 'dirty bits'],
  'refcount-error': ['refcount error', 'refcount errors'],
  'refcount-overflow': ['refcount overflow', 'refcount overflows'],
  'refcount-table-entry': ['invalid refcount table entry', 'invalid refcount table entries'],
  'refcount-table': ['refcount table problem', 'refcount table problems'],
  'snapshot-table': ['snapshot table problem', 'snapshot table problems'],
  'l1-entry': ['invalid L1 entry', 'invalid L1 entries'],
  'l1-table': ['L1 table problem', 'L1 table problems'],
  'l2-entry': ['invalid L2 entry', 'invalid L2 entries'],
  'extended-l2-bitmap': ['invalid subcluster bitmap', 'invalid subcluster bitmaps'],
  'v2-zero-flag': ['zero flag in a v2 image', 'zero flags in a v2 image'],
  overlap: ['overlap', 'overlaps'],
  'reused-cluster': ['reused cluster', 'reused clusters'],
  header: ['header problem', 'header problems'],
  bitmaps: ['bitmap problem', 'bitmap problems'],
  'read-error': ['read error', 'read errors'],
};

function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** One finding as a line (plus indented lines naming who references the cluster). */
export function formatFinding(finding: CheckFinding): string[] {
  const place: string[] = [
    finding.structure === 'refcount block' && finding.tableIndex !== undefined
      ? `refcount block ${finding.tableIndex}`
      : finding.structure,
  ];
  if (
    finding.owner !== undefined &&
    finding.owner !== 'active' &&
    !finding.structure.includes('snapshot')
  ) {
    place.push(`of snapshot ${finding.owner}`);
  }
  if (finding.structure === 'L2 table' && finding.tableIndex !== undefined) {
    place.push(`(L1 index ${finding.tableIndex})`);
  }
  if (finding.entryIndex !== undefined) place.push(`entry ${finding.entryIndex}`);
  if (finding.entryOffset !== undefined) place.push(`at ${hex(finding.entryOffset)}`);
  const targets: string[] = [];
  if (finding.hostOffset !== undefined) targets.push(`host ${hex(finding.hostOffset)}`);
  if (finding.virtualOffset !== undefined) targets.push(`guest ${hex(finding.virtualOffset)}`);
  const lines = [
    `${finding.kind}: ${place.join(' ')}${targets.length > 0 ? ` -> ${targets.join(', ')}` : ''}: ${finding.message}`,
  ];
  for (const reference of finding.referencedBy ?? []) {
    const showOwner =
      reference.owner !== 'image' &&
      !reference.structure.startsWith(reference.owner) &&
      !reference.structure.includes('snapshot');
    const prefix = !showOwner
      ? ''
      : reference.owner === 'active'
        ? 'active '
        : `snapshot ${reference.owner} `;
    const parts = [`  referenced by ${prefix}${reference.structure}`];
    if (reference.structure === 'L2 table' && reference.tableIndex !== undefined) {
      parts.push(`(L1 index ${reference.tableIndex})`);
    }
    if (reference.entryIndex !== undefined) parts.push(`entry ${reference.entryIndex}`);
    else if (reference.tableIndex !== undefined && reference.structure === 'refcount block') {
      parts.push(`${reference.tableIndex}`);
    }
    if (reference.entryOffset !== undefined) parts.push(`at ${hex(reference.entryOffset)}`);
    if (reference.virtualOffset !== undefined)
      parts.push(`(guest ${hex(reference.virtualOffset)})`);
    lines.push(parts.join(' '));
  }
  return lines;
}

/**
 * The human report. `check` mode: the verdict and the summary figures
 * (qemu-img's lines included); `error` and `dump` modes add every kept finding.
 */
export function formatCheckReport(report: CheckReport, mode: CheckMode): string[] {
  const lines: string[] = [];
  if (mode !== 'check') {
    for (const finding of report.findings) lines.push(...formatFinding(finding));
    if (report.truncated) {
      lines.push('(more findings of some kinds were counted but not listed; see the counts below)');
    }
    if (report.findings.length > 0) lines.push('');
  }
  if (report.corruptions === 0 && report.leaks === 0) {
    lines.push('No errors were found on the image.');
  } else {
    if (report.corruptions > 0) {
      lines.push(
        `${report.corruptions} errors were found on the image.`,
        'Data may be corrupted, or further writes to the image may corrupt it.',
      );
    }
    if (report.leaks > 0) {
      lines.push(
        `${report.leaks} leaked clusters were found on the image.`,
        'This means waste of disk space, but no harm to data.',
      );
    }
  }
  const counted = Object.entries(report.counts).map(([kind, count]) => {
    const words = KIND_WORDS[kind as FindingKind];
    return `${count} ${count === 1 ? words[0] : words[1]}`;
  });
  lines.push(
    `Verdict: ${report.verdict} (exit ${report.exitCode})${counted.length > 0 ? `: ${counted.join(', ')}` : ''}`,
  );
  lines.push(`Preallocation: ${report.preallocation}`);
  if (report.copyOnWrite !== undefined) {
    lines.push(
      `Snapshots: ${report.snapshots}; data the active image no longer shares with them (copy-on-write): ${report.copyOnWrite.clusters} clusters (${formatBytes(report.copyOnWrite.bytes)})`,
    );
  }
  lines.push(
    `Fragmentation: ${report.fragmentation.percent.toFixed(2)}%; ${report.fragmentation.rewriteRecommended ? 'a rewrite is recommended' : 'no rewrite needed'} (${report.fragmentation.reason})`,
  );
  if (report.suggestedRepair !== undefined) lines.push(`Suggested: ${report.suggestedRepair}`);
  const total = report['total-clusters'];
  const percent = (part: number, whole: number) =>
    (whole === 0 ? 0 : (part * 100) / whole).toFixed(2);
  const allocated = report['allocated-clusters'];
  lines.push(
    `${allocated}/${total} = ${percent(allocated, total)}% allocated, ${percent(report['fragmented-clusters'], allocated)}% fragmented, ${percent(report['compressed-clusters'], allocated)}% compressed clusters`,
    `Image end offset: ${report['image-end-offset']}`,
  );
  return lines;
}
