import {
  type CommandContext,
  jsonReplacer,
  LineWriter,
  printError,
  UsageError,
} from '@x/blockio/cli';
import {
  CHECK_EXIT_COULD_NOT_RUN,
  type CheckMode,
  checkImage,
  formatCheckReport,
  inspectImage,
  type L2EntryEvent,
  type WalkOwner,
} from '@x/qcow2/diagnosis';

const MODES = ['check', 'error', 'dump', 'info'];
const hex = (value: number) => `0x${value.toString(16)}`;

/** Runs `qcow2 check`; returns the check's own exit code. */
export async function runCheck(
  image: string,
  options: { mode: string; snapshot: string; json?: boolean | undefined },
  context: CommandContext,
): Promise<number> {
  if (!MODES.includes(options.mode)) {
    throw new UsageError(`--mode must be one of ${MODES.join(', ')}, not "${options.mode}"`);
  }
  const mode = options.mode as CheckMode;
  const json = options.json === true;
  try {
    if (mode === 'info') {
      const facts = await inspectImage(image);
      if (json) context.printJson(facts);
      else printFacts(facts, context);
      return facts.exitCode;
    }
    const out = new LineWriter();
    const dump = mode === 'dump';
    const report = await checkImage(image, {
      mode,
      snapshot: options.snapshot,
      signal: context.signal,
      onProgress: json ? undefined : context.progress.listener,
      onL1Entry: dump
        ? (owner: WalkOwner, index: number, entry: string, l2Offset: number) => {
            if (!owner.report) return;
            out.write(
              json
                ? JSON.stringify({ event: 'l1-entry', owner: owner.id, index, entry, l2Offset })
                : `${owner.label} L1[${index}] = ${entry} -> L2 table ${hex(l2Offset)}`,
            );
          }
        : undefined,
      onL2Entry: dump
        ? (event: L2EntryEvent) => {
            if (!event.owner.report) return;
            out.write(
              json
                ? JSON.stringify({ event: 'l2-entry', ...event, owner: event.owner.id })
                : formatL2(event),
            );
          }
        : undefined,
      onTableDone: dump ? () => out.flush() : undefined,
    });
    await out.flush(true);
    context.progress.close();
    if (json) {
      process.stdout.write(
        // jsonReplacer: a 64-bit refcount above 2^53 - 1 (a bigint) prints as its exact decimal string.
        `${JSON.stringify(dump ? { event: 'report', ...report } : report, jsonReplacer, dump ? 0 : 2)}\n`,
      );
    } else {
      for (const line of formatCheckReport(report, mode)) context.print(line);
    }
    return report.exitCode;
  } catch (error) {
    if (context.signal.aborted) throw error;
    context.progress.close();
    printError('qcow2', error, json);
    return CHECK_EXIT_COULD_NOT_RUN;
  }
}

function formatL2(event: L2EntryEvent): string {
  const flags = [event.type.toUpperCase()];
  if (event.copied) flags.push('COPIED');
  const host =
    event.type === 'compressed'
      ? `data ${hex(event.hostOffset)} +${event.compressedLength}`
      : event.hostOffset !== 0
        ? `host ${hex(event.hostOffset)}`
        : '';
  return `${event.owner.label} L2[${event.l1Index}][${event.entryIndex}] @${hex(event.entryOffset)} guest ${hex(event.virtualOffset)} = ${event.entry}${event.bitmap ? ` bitmap ${event.bitmap}` : ''} ${flags.join('|')} ${host}`.trimEnd();
}

function printFacts(
  facts: Awaited<ReturnType<typeof inspectImage>>,
  context: CommandContext,
): void {
  const lines = [
    `image: ${facts.filename}`,
    `format: qcow2 version ${facts.version} (header length ${facts.headerLength})`,
    `virtual size: ${facts['virtual-size']} bytes`,
    `file size: ${facts.fileSize} bytes`,
    `cluster size: ${facts['cluster-size']}`,
    `refcount bits: ${facts.refcountBits}`,
    `L1 table: ${hex(facts.l1Table.offset)}, ${facts.l1Table.entries} entries`,
    `refcount table: ${hex(facts.refcountTable.offset)}, ${facts.refcountTable.clusters} clusters, ${facts.refcountTable.blocks} blocks`,
    `snapshot table: ${hex(facts.snapshotTable.offset)}, ${facts.snapshotTable.count} snapshots`,
    ...facts.snapshots.map(
      (s) =>
        `  snapshot ${s.id} (${s.name}): L1 ${hex(s.l1Offset)}, ${s.l1Size} entries${s.damaged ? ' [damaged]' : ''}`,
    ),
    `incompatible features: ${facts.features.incompatible.join(', ') || 'none'}`,
    `compatible features: ${facts.features.compatible.join(', ') || 'none'}`,
    `autoclear features: ${facts.features.autoclear.join(', ') || 'none'}`,
    `compression type: ${facts.compressionType}`,
    ...(facts.backingFile !== undefined
      ? [
          `backing file: ${facts.backingFile}${facts.backingFormat ? ` (${facts.backingFormat})` : ''}`,
        ]
      : []),
    ...(facts.dataFile !== undefined ? [`data file: ${facts.dataFile}`] : []),
    ...(facts.encrypted ? ['encrypted: yes'] : []),
    ...facts.extensions.map(
      (e) => `header extension ${e.type} at ${hex(e.offset)}, ${e.length} bytes`,
    ),
  ];
  for (const finding of facts.findings)
    lines.push(`${finding.kind}: ${finding.structure}: ${finding.message}`);
  lines.push(`Verdict: ${facts.verdict} (exit ${facts.exitCode})`);
  for (const line of lines) context.print(line);
}
