import { type CommandContext, runCommand, UsageError } from '@x/blockio/cli';
import type { RestoreCliOptions } from './restore.js';

/** `--datastore name=path` values as a record; usage errors for bad ones. */
export function parseDatastores(values: readonly string[] | undefined): Record<string, string> {
  const stores: Record<string, string> = {};
  for (const value of values ?? []) {
    const eq = value.indexOf('=');
    if (eq <= 0 || eq === value.length - 1)
      throw new UsageError(`--datastore must be <name>=<path>, not "${value}"`);
    const name = value.slice(0, eq);
    if (name in stores) throw new UsageError(`--datastore ${name} is given twice`);
    stores[name] = value.slice(eq + 1);
  }
  if (Object.keys(stores).length === 0)
    throw new UsageError('give at least one --datastore <name>=<path>');
  return stores;
}

const taskLog = (line: string) => process.stderr.write(`${line}\n`);

export async function runRestore(options: RestoreCliOptions): Promise<void> {
  await runCommand(
    { program: 'tape-restore', json: options.json, progress: options.progress },
    async (context) => {
      const datastores = parseDatastores(options.datastore);
      const library = await import('@x/tape-restore');
      if (options.plan) {
        if (!options.snapshot?.length)
          throw new UsageError(
            '--plan needs the --snapshot list (a full restore reads every tape of the set)',
          );
        const drive = await library.openTapeDrive(options.drive);
        const plan = await library.planRestore({
          statusDir: options.statusDir,
          mediaSetUuid: options.mediaSet,
          storeMapping: options.store,
          datastores,
          snapshots: options.snapshot,
          owner: options.owner,
          drive,
        });
        if (context.json) context.printJson(plan);
        else printPlan(plan, context);
        return 0;
      }
      const drive = await library.openTapeDrive(options.drive);
      const base = {
        drive,
        statusDir: options.statusDir,
        mediaSetUuid: options.mediaSet,
        storeMapping: options.store,
        datastores,
        owner: options.owner,
        log: taskLog,
        signal: context.signal,
        onProgress: context.json ? undefined : context.progress.listener,
      };
      if (!options.snapshot?.length) {
        const result = await library.restoreMediaSet({ ...base, catalogDir: options.catalogDir });
        if (context.json) context.printJson(result);
        else
          context.print(
            `restored ${result.snapshotsRestored.length} snapshots, ${result.chunksRestored} chunks (${result.bytesRestored} bytes) from ${result.tapes.length} tapes`,
          );
        return result.snapshotsFailed.length > 0 ? 1 : 0;
      }
      const result = await library.restoreSnapshots({ ...base, snapshots: options.snapshot });
      if (context.json) context.printJson(result);
      else {
        context.print(
          `restored ${result.restored.length} of ${options.snapshot.length} snapshots (${result.alreadyPresent.length} already present, ${result.skipped.length} skipped); ` +
            `${result.chunksRestored} chunks (${result.bytesRestored} bytes) read from tape, ${result.chunksAlreadyPresent} already present`,
        );
      }
      return result.skipped.length > 0 || result.chunksNotFound > 0 ? 1 : 0;
    },
  );
}

function printPlan(plan: import('@x/tape-restore').RestorePlan, context: CommandContext): void {
  const lines = [`media set ${plan.mediaSetUuid} (pool ${plan.pool})`];
  for (const item of plan.restore)
    lines.push(
      `  restore ${item.snapshot} -> ${item.target} (tape ${item.tape}, file ${item.fileNumber})`,
    );
  for (const item of plan.alreadyPresent) lines.push(`  already present: ${item}`);
  for (const item of plan.skipped) lines.push(`  skip ${item.snapshot}: ${item.reason}`);
  lines.push(`tapes to load, in order: ${plan.loadOrder.join(', ') || 'none'}`);
  for (const tape of plan.tapes) {
    lines.push(
      `tape ${tape.label} (seq ${tape.seqNr}, ${tape.location}${tape.online === false ? ', not in the drive' : ''})`,
    );
    for (const read of tape.reads) {
      const what =
        read.kind === 'snapshot-archive'
          ? `snapshot archive ${read.store}:${read.snapshot}`
          : `chunk archive for datastore '${read.store}': ${read.need === 'certain' ? `${read.chunks} chunks` : `up to ${read.possibleChunks} chunks (if shared)`}`;
      lines.push(
        `  file ${read.fileNumber}: ${what}${read.bytes !== undefined ? `, ${read.bytes} bytes` : ''}`,
      );
    }
  }
  const t = plan.totals;
  lines.push(
    `total: ${t.certainTapes} tapes, ${t.files} files, ${t.chunks} chunks${t.bytes !== undefined ? `, ${t.bytes} bytes` : ''} certain; ` +
      `up to ${t.possibleChunks} more chunks${t.possibleBytes !== undefined ? ` (${t.possibleBytes} bytes)` : ''} if shared with earlier snapshots`,
  );
  context.print(lines.join('\n'));
}
