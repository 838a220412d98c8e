import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fromSystemError, writeFileAtomic } from '@x/blockio';
import { RbdRecoverError } from '../errors.js';
import type { OsdLocation } from '../hosts-file.js';
import { INVENTORY_FORMAT, INVENTORY_VERSION, type OsdInventory } from './inventory-types.js';

/** Where `database` keeps its files inside the working directory. */
export const INVENTORY_DIRECTORY = 'rbd-recover-inventory';

export function inventoryDirectory(workdir: string): string {
  return join(workdir, INVENTORY_DIRECTORY);
}

/** One file per OSD, named by the host and data path, so a rerun finds what is done. */
export function osdFileName(osd: OsdLocation): string {
  const digest = createHash('sha256').update(`${osd.host}\0${osd.dataPath}`).digest('hex');
  const label = `${osd.host}-${osd.dataPath}`.replace(/[^A-Za-z0-9.-]+/g, '_').slice(-60);
  return `osd-${label}-${digest.slice(0, 12)}.json`;
}

/** The index file: which OSDs the inventory covers, in hosts-file order. */
export interface InventoryIndex {
  readonly format: typeof INVENTORY_FORMAT;
  readonly version: typeof INVENTORY_VERSION;
  readonly osds: ReadonlyArray<{ osd: OsdLocation; file: string | undefined; error?: string }>;
  readonly poolNames: Record<string, string>;
  readonly updatedAt: string;
}

export async function writeOsdInventory(workdir: string, inventory: OsdInventory): Promise<string> {
  const directory = inventoryDirectory(workdir);
  await mkdir(directory, { recursive: true });
  const file = osdFileName(inventory.osd);
  // No fsync: the inventory can always be made again (database), and a torn file is
  // refused as BAD_INVENTORY; syncing several MB per OSD cost seconds on busy disks.
  await writeFileAtomic(join(directory, file), JSON.stringify(inventory), {
    ifExists: 'replace',
    sync: false,
  });
  return file;
}

export async function writeInventoryIndex(workdir: string, index: InventoryIndex): Promise<void> {
  const directory = inventoryDirectory(workdir);
  await mkdir(directory, { recursive: true });
  await writeFileAtomic(join(directory, 'index.json'), `${JSON.stringify(index, null, 2)}\n`, {
    ifExists: 'replace',
    sync: false,
  });
}

/** A finished OSD's inventory from an earlier run, or undefined (absent, other version, other OSD). */
export async function readOsdInventory(
  workdir: string,
  osd: OsdLocation,
): Promise<OsdInventory | undefined> {
  const path = join(inventoryDirectory(workdir), osdFileName(osd));
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const parsed = parseInventoryFile(text, path);
  if (parsed.osd.host !== osd.host || parsed.osd.dataPath !== osd.dataPath) return undefined;
  return parsed;
}

function parseInventoryFile(text: string, path: string): OsdInventory {
  let parsed: OsdInventory;
  try {
    parsed = JSON.parse(text) as OsdInventory;
  } catch (error) {
    throw new RbdRecoverError('BAD_INVENTORY', `not JSON: ${(error as Error).message}`, { path });
  }
  if (parsed.format !== INVENTORY_FORMAT) {
    throw new RbdRecoverError('BAD_INVENTORY', 'not an rbd-recover inventory file', { path });
  }
  if (parsed.version !== INVENTORY_VERSION) {
    throw new RbdRecoverError(
      'BAD_INVENTORY',
      `inventory version ${parsed.version}, this tool reads ${INVENTORY_VERSION}: run database again`,
      { path },
    );
  }
  return parsed;
}

/** Everything the last `database` run gathered, OSDs in hosts-file order. */
export interface LoadedInventory {
  readonly workdir: string;
  readonly index: InventoryIndex;
  readonly osds: OsdInventory[];
}

export async function loadInventory(workdir: string): Promise<LoadedInventory> {
  const directory = inventoryDirectory(workdir);
  const indexPath = join(directory, 'index.json');
  let text: string;
  try {
    text = await readFile(indexPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new RbdRecoverError(
        'NO_INVENTORY',
        'no inventory here: run `rbd-recover database --hosts <file>` first (or pass --workdir)',
        { path: directory },
      );
    }
    throw fromSystemError(error, 'read the inventory index', { path: indexPath });
  }
  let index: InventoryIndex;
  try {
    index = JSON.parse(text) as InventoryIndex;
  } catch (error) {
    throw new RbdRecoverError('BAD_INVENTORY', `not JSON: ${(error as Error).message}`, {
      path: indexPath,
    });
  }
  if (index.format !== INVENTORY_FORMAT || index.version !== INVENTORY_VERSION) {
    throw new RbdRecoverError(
      'BAD_INVENTORY',
      `inventory format ${index.format} version ${index.version}: run database again`,
      { path: indexPath },
    );
  }
  const osds: OsdInventory[] = [];
  for (const entry of index.osds) {
    if (entry.file === undefined) continue;
    const path = join(directory, entry.file);
    let body: string;
    try {
      body = await readFile(path, 'utf8');
    } catch (error) {
      throw fromSystemError(error, 'read the inventory of an OSD', { path });
    }
    osds.push(parseInventoryFile(body, path));
  }
  return { workdir, index, osds };
}

/** Files of the inventory directory (for messages and tests). */
export async function inventoryFiles(workdir: string): Promise<string[]> {
  return readdir(inventoryDirectory(workdir)).catch(() => []);
}
