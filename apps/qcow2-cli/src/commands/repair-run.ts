import { type CommandContext, printError } from '@x/blockio/cli';
import {
  CHECK_EXIT_COULD_NOT_RUN,
  formatCheckReport,
  type RepairResult,
  repairImage,
} from '@x/qcow2/diagnosis';
import type { RepairCliOptions } from './repair.js';

const hex = (value: number) => `0x${value.toString(16)}`;

export async function runRepair(
  image: string,
  options: RepairCliOptions,
  context: CommandContext,
): Promise<number> {
  let result: RepairResult;
  try {
    result = await repairImage(image, {
      leaks: options.leaks,
      refcounts: options.refcounts,
      copied: options.copied,
      rebuildRefcounts: options.rebuildRefcounts,
      dryRun: options.dryRun,
      undoLog: options.undoLog,
      signal: context.signal,
      onProgress: options.json ? undefined : context.progress.listener,
    });
  } catch (error) {
    if (context.signal.aborted) throw error;
    context.progress.close();
    printError('qcow2', error, options.json === true);
    return CHECK_EXIT_COULD_NOT_RUN;
  }
  context.progress.close();
  if (options.json) {
    context.printJson(result);
    return result.exitCode;
  }
  const print = (line: string) => context.print(line);
  const counts = Object.entries(result.before.counts).map(([kind, count]) => `${count} ${kind}`);
  print(
    `Before: ${result.before.verdict} (exit ${result.before.exitCode})${counts.length ? `: ${counts.join(', ')}` : ''}`,
  );
  if (result.before.exitCode === 0 && result.rebuilt === undefined) {
    print('Nothing to repair.');
    return 0;
  }
  const verb = result.dryRun ? 'Would' : 'Did';
  const done: string[] = [];
  if (result.leaksFixed) done.push(`free ${result.leaksFixed} leaked clusters`);
  if (result.refcountsFixed) done.push(`raise ${result.refcountsFixed} refcounts`);
  if (result.copiedFixed) done.push(`fix ${result.copiedFixed} COPIED flags`);
  if (result.rebuilt) {
    done.push(
      `rebuild the refcount structure (${result.rebuilt.blocks} blocks at ${hex(result.rebuilt.blocksCluster * result.before.clusterSize)}, table at ${hex(result.rebuilt.refcountTableOffset)})`,
    );
  }
  if (result.flagsCleared.length) done.push(`clear the ${result.flagsCleared.join(' and ')} bit`);
  print(done.length ? `${verb}: ${done.join('; ')}.` : `${verb}: no changes.`);
  for (const reason of result.refused) print(`Not repaired: ${reason}`);
  for (const note of result.notes) print(`Note: ${note}`);
  print(
    `${result.dryRun ? 'Would write' : 'Wrote'} ${result.writes} ranges (${result.bytesWritten} bytes).`,
  );
  if (result.dryRun) {
    for (const write of result.planned)
      print(`  ${hex(write.offset)} +${write.length}: ${write.reason}`);
  }
  if (result.undoLog) print(`Undo log: ${result.undoLog} (undo with: qcow2 undo ${image})`);
  if (result.after) {
    print('');
    print('After:');
    for (const line of formatCheckReport(result.after, 'error')) print(line);
  }
  return result.exitCode;
}
