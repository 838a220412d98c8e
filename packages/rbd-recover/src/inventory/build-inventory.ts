import { forEachSettled, type LongRunningOptions, ProgressTracker } from '@x/blockio';
import type { OsdLocation } from '../hosts-file.js';
import type { KvStoreOpener } from '../kv.js';
import type { CommandOptions } from '../transport/osd-commands.js';
import type { TransportPool } from '../transport/transport-pool.js';
import type { OsdInventory } from './inventory-types.js';
import { scanOsd } from './scan-osd.js';
import { readOsdInventory, writeInventoryIndex, writeOsdInventory } from './workdir.js';

export interface BuildInventoryOptions extends LongRunningOptions, CommandOptions {
  /** Where the inventory goes (the current directory in the CLI). */
  workdir: string;
  transports: TransportPool;
  openKvStore: KvStoreOpener;
  /** OSDs read at the same time. Default 4. */
  concurrency?: number | undefined;
  /** Read every OSD again, even those an earlier run finished. Default false: resume. */
  fresh?: boolean | undefined;
  /** Pool names the user gives (`--pool-name 1=rbd`), kept for list/lookup. */
  poolNames?: Record<string, string> | undefined;
}

export interface InventorySummary {
  readonly osds: ReadonlyArray<{
    osd: OsdLocation;
    /** `scanned` now, `kept` from an earlier run, or `failed`. */
    status: 'scanned' | 'kept' | 'failed';
    objects: number;
    pgs: number;
    kvBackend: string | undefined;
    error?: unknown;
    problems: readonly string[];
    unparsed: number;
  }>;
  readonly objects: number;
}

/**
 * `database`: reads every OSD in parallel and keeps one inventory file per OSD in the
 * working directory. A rerun keeps the OSDs an earlier run finished (unless `fresh`),
 * so an interrupted or partly failed inventory continues where it stopped.
 */
export async function buildInventory(
  osds: readonly OsdLocation[],
  options: BuildInventoryOptions,
): Promise<InventorySummary> {
  const results: Array<InventorySummary['osds'][number] | undefined> = osds.map(() => undefined);
  const files: Array<string | undefined> = osds.map(() => undefined);
  const counts = osds.map(() => 0);
  const progress = new ProgressTracker('database', 0, options.onProgress, { unit: 'items' });
  const describe = (osd: OsdLocation, inventory: OsdInventory, status: 'scanned' | 'kept') => ({
    osd,
    status,
    objects: inventory.objects.length,
    pgs: inventory.pgs.length,
    kvBackend: inventory.kvBackend,
    problems: inventory.problems,
    unparsed: inventory.unparsed.length,
  });
  const failures = await forEachSettled(
    osds.entries(),
    options.concurrency ?? 4,
    async ([index, osd]) => {
      if (!options.fresh) {
        const earlier = await readOsdInventory(options.workdir, osd).catch(() => undefined);
        if (earlier) {
          files[index] = await writeOsdInventory(options.workdir, { ...earlier, index });
          results[index] = describe(osd, earlier, 'kept');
          return;
        }
      }
      const transport = await options.transports.get(osd);
      const inventory = await scanOsd(transport, osd, index, {
        ...options,
        onFiles: (count) => {
          counts[index] = count;
          progress.set(counts.reduce((sum, value) => sum + value, 0));
        },
      });
      files[index] = await writeOsdInventory(options.workdir, inventory);
      results[index] = describe(osd, inventory, 'scanned');
    },
    { signal: options.signal },
  );
  for (const failure of failures) {
    const [index, osd] = failure.item;
    results[index] = {
      osd,
      status: 'failed',
      objects: 0,
      pgs: 0,
      kvBackend: undefined,
      error: failure.error,
      problems: [],
      unparsed: 0,
    };
  }
  await writeInventoryIndex(options.workdir, {
    format: 'rbd-recover-inventory',
    version: 1,
    osds: osds.map((osd, index) => ({
      osd,
      file: files[index],
      ...(results[index]?.status === 'failed'
        ? { error: String((results[index]?.error as Error)?.message ?? results[index]?.error) }
        : {}),
    })),
    poolNames: options.poolNames ?? {},
    updatedAt: new Date().toISOString(),
  });
  progress.finish();
  const done = results.filter((result) => result !== undefined);
  return { osds: done, objects: done.reduce((sum, result) => sum + result.objects, 0) };
}
