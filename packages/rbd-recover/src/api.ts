import type { LongRunningOptions } from '@x/blockio';
import { allowManyAbortListeners } from './abort-listeners.js';
import type { OsdLocation } from './hosts-file.js';
import { buildInventory, type InventorySummary } from './inventory/build-inventory.js';
import { loadInventory } from './inventory/workdir.js';
import type { KvStoreOpener } from './kv.js';
import { Catalog, type ManualMetadata } from './metadata/catalog.js';
import { parseImageSpec } from './metadata/image-spec.js';
import type { ImageInfo, ImageRef, ImageSpec } from './metadata/image-types.js';
import type { ReplicaPolicy } from './replica.js';
import type { SshOptions } from './transport/ssh-options.js';
import { createTransportPool, type TransportPool } from './transport/transport-pool.js';

export interface DatabaseOptions extends LongRunningOptions {
  /** Where the inventory goes. Default: the current directory. */
  workdir?: string | undefined;
  /** Opens an OSD's omap store read-only (default: @x/kvstore's openKvStore). */
  openKvStore?: KvStoreOpener | undefined;
  ssh?: SshOptions | undefined;
  transports?: TransportPool | undefined;
  /** OSDs read at once. Default 4. */
  concurrency?: number | undefined;
  /** Read every OSD again (default: keep OSDs an earlier run finished). */
  fresh?: boolean | undefined;
  poolNames?: Record<string, string> | undefined;
  stallTimeoutMs?: number | undefined;
}

/** `database`: reads every OSD and keeps the inventory in the working directory. */
export async function createInventory(
  osds: readonly OsdLocation[],
  options: DatabaseOptions = {},
): Promise<InventorySummary> {
  allowManyAbortListeners(options.signal);
  const transports = options.transports ?? createTransportPool(options.ssh);
  try {
    return await buildInventory(osds, {
      workdir: options.workdir ?? process.cwd(),
      transports,
      openKvStore: options.openKvStore ?? (await defaultKvStoreOpener()),
      concurrency: options.concurrency,
      fresh: options.fresh,
      poolNames: options.poolNames,
      signal: options.signal,
      onProgress: options.onProgress,
      stallTimeoutMs: options.stallTimeoutMs,
    });
  } finally {
    if (options.transports === undefined) await transports.close();
  }
}

/** The omap reader used when none is given. */
async function defaultKvStoreOpener(): Promise<KvStoreOpener> {
  const { openKvStore } = await import('./kv-default.js');
  return openKvStore;
}

export interface CatalogOptions {
  workdir?: string | undefined;
  policy?: ReplicaPolicy | undefined;
  poolNames?: Record<string, string> | undefined;
}

/** Pools, namespaces and images of the inventory in `workdir` (no host is contacted). */
export async function openCatalog(options: CatalogOptions = {}): Promise<Catalog> {
  const inventory = await loadInventory(options.workdir ?? process.cwd());
  return new Catalog(inventory, options);
}

/** `list`: every image (of one pool, by id or name). */
export async function listImages(
  options: CatalogOptions & { pool?: string | undefined } = {},
): Promise<ImageRef[]> {
  return (await openCatalog(options)).listImages(options.pool);
}

/** `lookup`: an image's prefix, size, order, features and snapshots. */
export async function lookupImage(
  spec: string | ImageSpec,
  options: CatalogOptions & { manual?: ManualMetadata | undefined } = {},
): Promise<ImageInfo> {
  const parsed = typeof spec === 'string' ? parseImageSpec(spec) : spec;
  return (await openCatalog(options)).lookup(parsed, options.manual);
}
