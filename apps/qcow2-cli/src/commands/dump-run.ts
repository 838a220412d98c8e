import { type CommandContext, jsonReplacer, LineWriter } from '@x/blockio/cli';
import { type DumpRecord, type DumpSection, dumpImage } from '@x/qcow2/diagnosis';
import type { DumpCliOptions } from './dump.js';

const hex = (value: number) => `0x${value.toString(16)}`;
const JSON_KEYS: Record<DumpRecord['section'], string> = {
  header: 'header',
  'header-offsets': 'headerOffsets',
  snapshots: 'snapshots',
  l1: 'l1',
  l2: 'l2',
  refcounts: 'refcounts',
};

export async function runDump(
  image: string,
  options: DumpCliOptions,
  context: CommandContext,
): Promise<void> {
  const sections: DumpSection[] = [];
  if (options.header) sections.push('header');
  if (options.headerOffsets) sections.push('header-offsets');
  if (options.snapshots) sections.push('snapshots');
  if (options.l1) sections.push('l1');
  if (options.l2) sections.push('l2');
  if (options.refcounts) sections.push('refcounts');
  if (sections.length === 0) sections.push('header', 'snapshots', 'l1');
  const out = new LineWriter();
  const json = options.json === true;
  // One JSON document, streamed: each section is an array opened when its first record arrives.
  let open: DumpRecord['section'] | undefined;
  let first = true;
  if (json) out.write(`{"filename":${JSON.stringify(image)}`);
  await dumpImage(image, {
    sections,
    snapshot: options.snapshot,
    signal: context.signal,
    onRecord: async (record) => {
      if (json) {
        const { section, ...body } = record;
        const value = JSON.stringify(body, jsonReplacer);
        if (section === 'header') out.write(`,"header":${value}`);
        else {
          if (open !== section) {
            if (open !== undefined) out.write(']');
            out.write(`,"${JSON_KEYS[section]}":[`);
            open = section;
            first = true;
          }
          out.write(`${first ? '' : ','}${value}`);
          first = false;
        }
      } else {
        for (const line of formatRecord(record, open !== record.section)) out.write(line);
        open = record.section;
      }
      await out.flush();
    },
  });
  if (json) out.write(`${open !== undefined && open !== 'header' ? ']' : ''}}`);
  await out.flush(true);
  context.progress.close();
}

function formatRecord(record: DumpRecord, firstOfSection: boolean): string[] {
  const lines: string[] = [];
  const title = (text: string) => {
    if (firstOfSection) lines.push('', `== ${text} ==`);
  };
  switch (record.section) {
    case 'header':
      title('header');
      for (const [name, value] of Object.entries(record.fields)) {
        // Every number in decimal and hex, as the README says (the magic included).
        const numeric = typeof value === 'bigint' || typeof value === 'number';
        lines.push(`${name}: ${numeric ? `${value} (0x${value.toString(16)})` : value}`);
      }
      lines.push(`incompatible features: ${record.features.incompatible.join(', ') || 'none'}`);
      lines.push(`compatible features: ${record.features.compatible.join(', ') || 'none'}`);
      lines.push(`autoclear features: ${record.features.autoclear.join(', ') || 'none'}`);
      if (record.backingFile !== undefined) lines.push(`backing file: ${record.backingFile}`);
      for (const e of record.extensions)
        lines.push(`extension ${e.type} at ${hex(e.offset)}, ${e.length} bytes`);
      break;
    case 'header-offsets':
      title('header field offsets');
      lines.push(
        `${String(record.offset).padStart(4)} ${hex(record.offset).padStart(6)} +${record.size} ${record.name.padEnd(22)} ${record.value.padEnd(18)} ${record.doc}`,
      );
      break;
    case 'snapshots':
      title('snapshots');
      lines.push(
        `#${record.index} at ${hex(record.entryOffset)}: id ${record.id} name ${record.name} L1 ${hex(record.l1Offset)} (${record.l1Size} entries) date ${new Date(record.dateSec * 1000).toISOString()}${record.diskSize !== undefined ? ` disk ${record.diskSize}` : ''}${record.damaged ? ' [damaged]' : ''}`,
      );
      break;
    case 'l1':
      title('L1 entries');
      lines.push(
        `${record.owner} L1[${record.index}] @${hex(record.entryOffset)} guest ${hex(record.virtualOffset)} = ${record.entry} -> L2 ${hex(record.l2Offset)}${record.copied ? ' COPIED' : ''}`,
      );
      break;
    case 'l2': {
      title('L2 entries');
      const flags = [record.type.toUpperCase(), ...(record.copied ? ['COPIED'] : [])].join('|');
      const where =
        record.type === 'compressed'
          ? ` data ${hex(record.hostOffset)} +${record.compressedLength}`
          : record.hostOffset !== 0
            ? ` host ${hex(record.hostOffset)}`
            : '';
      lines.push(
        `${record.owner} L2[${record.l1Index}][${record.entryIndex}] @${hex(record.entryOffset)} guest ${hex(record.virtualOffset)} = ${record.entry}${record.bitmap ? ` bitmap ${record.bitmap}` : ''} ${flags}${where}`,
      );
      break;
    }
    case 'refcounts':
      title('refcounts');
      lines.push(
        `refcount table[${record.index}] @${hex(record.entryOffset)} = ${record.entry}${record.valid ? '' : ' [invalid]'}`,
      );
      for (const run of record.runs) {
        lines.push(
          `  clusters ${run.firstCluster}..${run.firstCluster + run.clusters - 1}: refcount ${run.refcount}`,
        );
      }
      break;
  }
  return lines;
}
