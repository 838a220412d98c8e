import { formatSize } from '@x/blockio';
import type { ImageInfo } from '@x/qcow2/read';
import { formatSnapshotRow, SNAPSHOT_TABLE_HEADER } from './snapshot-table.js';

/** The human form of `qcow2 info`, laid out like qemu-img info's. */
export function formatInfo(info: ImageInfo): string {
  const lines: string[] = [
    `image: ${info.filename}`,
    `file format: ${info.format}`,
    `virtual size: ${formatSize(info['virtual-size'])} (${info['virtual-size']} bytes)`,
    `disk size: ${formatSize(info['actual-size'])}`,
  ];
  if (info['cluster-size'] !== undefined) lines.push(`cluster_size: ${info['cluster-size']}`);
  if (info['backing-filename'] !== undefined) {
    lines.push(
      `backing file: ${info['backing-filename']} (actual path: ${info['full-backing-filename']})`,
    );
    if (info['backing-filename-format'] !== undefined) {
      lines.push(`backing file format: ${info['backing-filename-format']}`);
    }
  }
  if (info.encrypted) lines.push('encrypted: yes');
  if (info.snapshots?.length) {
    lines.push('Snapshot list:');
    lines.push(SNAPSHOT_TABLE_HEADER);
    for (const snapshot of info.snapshots) {
      lines.push(
        formatSnapshotRow({
          id: snapshot.id,
          name: snapshot.name,
          vmStateSize: snapshot['vm-state-size'],
          dateSec: snapshot['date-sec'],
          vmClockNsec: snapshot['vm-clock-sec'] * 1e9 + snapshot['vm-clock-nsec'],
          icount: snapshot.icount,
        }),
      );
    }
  }
  const data = info['format-specific']?.data;
  if (data) {
    lines.push('Format specific information:');
    for (const [key, value] of Object.entries(data)) {
      const shown = typeof value === 'object' ? JSON.stringify(value) : String(value);
      lines.push(`    ${key.replaceAll('-', ' ')}: ${shown}`);
    }
  }
  if (info.version !== undefined) {
    lines.push(`qcow2 version: ${info.version}`);
  }
  if (info.features) {
    lines.push('Feature bits:');
    for (const type of ['incompatible', 'compatible', 'autoclear'] as const) {
      const names = info.features[type];
      lines.push(`    ${type}: ${names.length ? names.join(', ') : 'none'}`);
    }
  }
  if (info['header-extensions']?.length) {
    lines.push('Header extensions:');
    for (const extension of info['header-extensions']) {
      lines.push(
        `    ${extension.type} ${extension.name} (${extension.length} bytes at offset ${extension.offset})`,
      );
    }
  }
  const allocation = info.allocation;
  if (allocation) {
    lines.push('Allocation (this image only):');
    lines.push(`    data: ${formatSize(allocation['data-bytes'])}`);
    lines.push(`    compressed: ${formatSize(allocation['compressed-bytes'])}`);
    lines.push(`    zero: ${formatSize(allocation['zero-bytes'])}`);
    lines.push(`    unallocated: ${formatSize(allocation['unallocated-bytes'])}`);
    lines.push(
      `    clusters: ${allocation['allocated-clusters']} allocated, ` +
        `${allocation['compressed-clusters']} compressed (${allocation['compressed-percent']}%), ` +
        `${allocation['fragmented-clusters']} fragmented (${allocation['fragmented-percent']}%)`,
    );
  }
  if (info.problems?.length) {
    lines.push('Could not read (the image is damaged):');
    for (const problem of info.problems) {
      const where = [
        problem.structure,
        problem.offset === undefined ? undefined : `at offset ${problem.offset}`,
      ]
        .filter(Boolean)
        .join(' ');
      lines.push(`    ${where ? `${where}: ` : ''}${problem.message} [${problem.code}]`);
    }
    lines.push(`Run \`qcow2 check ${info.filename}\` for a full diagnosis.`);
  }
  return lines.join('\n');
}
