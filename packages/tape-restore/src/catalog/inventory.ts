import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fromSystemError } from '@x/blockio';
import {
  type MediaLabel,
  type MediaSetLabel,
  mediaLabelProblem,
  mediaSetLabelProblem,
} from '../decode/labels.js';
import { TapeRestoreError } from '../errors.js';
import { NIL_UUID } from '../uuid.js';

/** One tape of `inventory.json` (§7). */
export interface InventoryEntry {
  readonly label: MediaLabel;
  readonly mediaSetLabel: MediaSetLabel | undefined;
  /** `offline`, `online-<changer>`, `vault-<name>`, or undefined. */
  readonly location: string | undefined;
  /** `writable`, `full`, `unknown`, `damaged`, `retired`, or undefined. */
  readonly status: string | undefined;
  readonly bytesUsed: number | undefined;
}

export const INVENTORY_FILE = 'inventory.json';

/** Parses `inventory.json` text (a JSON array, §7). `path` names it in errors. */
export function parseInventory(text: string, path: string): InventoryEntry[] {
  const fail = (why: string) =>
    new TapeRestoreError('BAD_INVENTORY', why, { path, structure: 'inventory.json' });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw fail(`not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(json)) throw fail('not a JSON array');
  return json.map((raw: unknown, index): InventoryEntry => {
    if (typeof raw !== 'object' || raw === null) throw fail(`entry ${index} is not an object`);
    const entry = raw as Record<string, unknown>;
    const id = entry.id as Record<string, unknown> | undefined;
    if (typeof id !== 'object' || id === null) throw fail(`entry ${index} has no "id"`);
    const labelProblem = mediaLabelProblem(id.label);
    if (labelProblem) throw fail(`entry ${index}: the media label ${labelProblem}`);
    let mediaSetLabel: MediaSetLabel | undefined;
    if (id.media_set_label !== undefined && id.media_set_label !== null) {
      const problem = mediaSetLabelProblem(id.media_set_label);
      if (problem) throw fail(`entry ${index}: the media-set label ${problem}`);
      mediaSetLabel = id.media_set_label as MediaSetLabel;
    }
    const optionalString = (name: string) => {
      const value = entry[name];
      if (value === undefined || value === null) return undefined;
      if (typeof value !== 'string') throw fail(`entry ${index}: "${name}" is not a string`);
      return value;
    };
    const bytesUsed = entry.bytes_used;
    if (
      bytesUsed !== undefined &&
      bytesUsed !== null &&
      (typeof bytesUsed !== 'number' || !Number.isSafeInteger(bytesUsed))
    ) {
      throw fail(`entry ${index}: "bytes_used" is not an integer`);
    }
    return {
      label: id.label as MediaLabel,
      mediaSetLabel,
      location: optionalString('location'),
      status: optionalString('status'),
      bytesUsed: (bytesUsed as number | undefined) ?? undefined,
    };
  });
}

export async function loadInventory(statusDir: string): Promise<InventoryEntry[]> {
  const path = join(statusDir, INVENTORY_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw fromSystemError(error, 'read the tape inventory', { path });
  }
  return parseInventory(text, path);
}

/** The members of one media set, by seq_nr (§7 Media-set membership). */
export interface MediaSet {
  readonly uuid: string;
  readonly pool: string;
  /** members[seq_nr] */
  readonly members: InventoryEntry[];
}

/**
 * Assembles media set `uuid` from the inventory: every entry whose media-set label
 * names it, placed at its seq_nr. A gap is MEDIA_SET_INCOMPLETE ("missing member N"),
 * as are two tapes at one position or members of different pools.
 */
export function assembleMediaSet(
  inventory: readonly InventoryEntry[],
  uuid: string,
  path = INVENTORY_FILE,
): MediaSet {
  if (uuid === NIL_UUID) {
    throw new TapeRestoreError('BAD_INVENTORY', 'the all-zero uuid names no media set', { path });
  }
  const members: InventoryEntry[] = [];
  let pool: string | undefined;
  for (const entry of inventory) {
    const set = entry.mediaSetLabel;
    if (set?.uuid !== uuid) continue;
    if (members[set.seq_nr] !== undefined) {
      throw new TapeRestoreError(
        'BAD_INVENTORY',
        `media set ${uuid} has two tapes at position ${set.seq_nr}`,
        { path },
      );
    }
    if (pool !== undefined && set.pool !== pool) {
      throw new TapeRestoreError(
        'BAD_INVENTORY',
        `media set ${uuid} mixes pools ${pool} and ${set.pool}`,
        { path },
      );
    }
    pool = set.pool;
    members[set.seq_nr] = entry;
  }
  if (pool === undefined) {
    throw new TapeRestoreError(
      'MEDIA_SET_INCOMPLETE',
      `media set ${uuid} is not in the inventory`,
      { path },
    );
  }
  for (let seqNr = 0; seqNr < members.length; seqNr++) {
    if (members[seqNr] === undefined) {
      throw new TapeRestoreError(
        'MEDIA_SET_INCOMPLETE',
        `media set ${uuid} is incomplete (missing member ${seqNr})`,
        { path },
      );
    }
  }
  return { uuid, pool, members };
}
