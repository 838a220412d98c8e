import type { CommandContext } from '@x/blockio/cli';
import { describePool, parseImageSpec, type RecoverReport, recoverImage } from '@x/rbd-recover';
import {
  asUsage,
  manualFromFlags,
  parseCount,
  parsePoolNames,
  sshFromFlags,
  stallTimeoutMs,
} from './parse-options.js';
import type { RecoverOptions } from './recover.js';

const SHOWN = 20;

export async function runRecover(
  text: string,
  options: RecoverOptions,
  context: CommandContext,
): Promise<number> {
  const spec = await asUsage(async () => parseImageSpec(text));
  const manual = manualFromFlags(options);
  const report = await asUsage(() =>
    recoverImage(spec, options.output, {
      workdir: options.workdir,
      format: options.format,
      allSnapshots: options.allSnapshots,
      resume: options.resume,
      overwrite: options.force,
      policy: options.perObject ? 'per-object' : 'per-pg',
      poolNames: parsePoolNames(options.poolName),
      manual,
      ssh: sshFromFlags(options),
      streamsPerHost: parseCount(options.jobs, '--jobs', 64),
      transferThreads: parseCount(options.threads, '--threads', 64, 0),
      stallTimeoutMs: stallTimeoutMs(options),
      signal: context.signal,
      onProgress: context.progress.listener,
    }),
  );
  if (context.json) context.printJson(report);
  else printReport(context, report);
  return report.complete ? 0 : 1;
}

function printReport(context: CommandContext, report: RecoverReport): void {
  const { image } = report;
  const pool = describePool({ id: image.pool, name: image.poolName });
  const namespace = image.namespace === '' ? '' : `${image.namespace}/`;
  context.print(
    `${pool}/${namespace}${image.name}: ${report.objectsCopied} objects copied (${report.bytesCopied} bytes)${report.objectsResumed > 0 ? `, ${report.objectsResumed} finished by the earlier run` : ''} in ${(report.elapsedMs / 1000).toFixed(1)} s`,
  );
  for (const state of report.states) {
    const label = state.snapId === undefined ? 'head' : `@${state.label} (snap id ${state.snapId})`;
    context.print(
      `  ${label}: ${state.size} bytes, ${state.objects} objects: ${state.recovered} recovered, ${state.absent} never written (zeros)${state.zeroFilled.length > 0 ? `, ${state.zeroFilled.length} UNREADABLE (zeros)` : ''}${state.fallbacks.length > 0 ? `, ${state.fallbacks.length} from another replica` : ''}${state.inferred > 0 ? `, ${state.inferred} by clone names (no SnapSet)` : ''} → ${state.file ?? report.output}`,
    );
    for (const missing of state.zeroFilled.slice(0, SHOWN)) {
      context.warn(`${label} object ${missing.index}: zero-filled: ${missing.reason}`);
    }
    if (state.zeroFilled.length > SHOWN)
      context.warn(`… and ${state.zeroFilled.length - SHOWN} more`);
  }
  for (const tie of report.ties) {
    context.warn(
      `pg ${tie.pg}: the same newest epoch on ${tie.osds.join(' and ')}; used the first`,
    );
  }
  for (const conflict of report.conflicts.slice(0, SHOWN)) {
    context.warn(
      `pg ${conflict.pg} (epoch ${conflict.epoch}): replicas of ${conflict.path} differ: ${conflict.copies
        .map((copy) => `${copy.osd} (${copy.size} bytes${copy.sha1 ? `, sha1 ${copy.sha1}` : ''})`)
        .join(' vs ')}; used the first`,
    );
  }
  if (report.conflicts.length > SHOWN)
    context.warn(`… and ${report.conflicts.length - SHOWN} more`);
  for (const problem of report.problems.slice(0, SHOWN)) context.warn(problem);
  context.print(
    report.complete
      ? 'complete: every object was read'
      : 'INCOMPLETE: see the objects listed above',
  );
}
