import type { CommandContext } from '@x/blockio/cli';
import { createInventory, readHostsFile } from '@x/rbd-recover';
import type { DatabaseOptions } from './database.js';
import { parseCount, parsePoolNames, sshFromFlags, stallTimeoutMs } from './parse-options.js';

export async function runDatabase(
  options: DatabaseOptions,
  context: CommandContext,
): Promise<number> {
  const poolNames = parsePoolNames(options.poolName);
  const concurrency = parseCount(options.jobs, '--jobs');
  const osds = await readHostsFile(options.hosts);
  const summary = await createInventory(osds, {
    workdir: options.workdir,
    ssh: sshFromFlags(options),
    concurrency,
    fresh: options.fresh,
    poolNames,
    stallTimeoutMs: stallTimeoutMs(options),
    signal: context.signal,
    onProgress: context.progress.listener,
  });
  const failed = summary.osds.filter((osd) => osd.status === 'failed');
  if (context.json) {
    context.printJson({
      osds: summary.osds.map((osd) => ({
        host: osd.osd.host,
        dataPath: osd.osd.dataPath,
        status: osd.status,
        objects: osd.objects,
        pgs: osd.pgs,
        kvBackend: osd.kvBackend ?? null,
        unparsed: osd.unparsed,
        problems: osd.problems,
        error: osd.error === undefined ? null : describe(osd.error),
      })),
      objects: summary.objects,
      complete: failed.length === 0,
    });
  } else {
    for (const osd of summary.osds) {
      const where = `${osd.osd.host} ${osd.osd.dataPath}`;
      if (osd.status === 'failed') {
        context.warn(`${where}: ${describe(osd.error)}`);
        continue;
      }
      context.print(
        `${where}: ${osd.objects} objects in ${osd.pgs} PGs, omap ${osd.kvBackend ?? 'unreadable'}${osd.status === 'kept' ? ' (kept from an earlier run)' : ''}${osd.unparsed > 0 ? `, ${osd.unparsed} files not understood` : ''}`,
      );
      for (const problem of osd.problems.slice(0, 10)) context.warn(`${where}: ${problem}`);
    }
    context.print(
      `inventory: ${summary.objects} objects from ${summary.osds.length - failed.length} of ${summary.osds.length} OSDs${failed.length > 0 ? ' (rerun database to retry the failed ones)' : ''}`,
    );
  }
  return failed.length > 0 ? 1 : 0;
}

function describe(error: unknown): string {
  const described = (error as { describe?: () => string })?.describe?.();
  return described ?? (error as Error)?.message ?? String(error);
}
