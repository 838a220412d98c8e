import type { InventoryObject, OsdInventory } from './inventory/inventory-types.js';
import { objectId } from './inventory/inventory-types.js';
import { getOrInsert } from './map-utils.js';

/** How the copy of an object is chosen among OSDs. */
export type ReplicaPolicy = 'per-pg' | 'per-object';

/** The authoritative replica of one PG: the OSD whose pgmeta `_epoch` is newest. */
export interface PgChoice {
  readonly pg: string;
  /** Index into the inventory's OSDs. */
  readonly osd: number;
  /** undefined when no replica's epoch could be read. */
  readonly epoch: number | undefined;
  /** Other OSDs with the same (newest) epoch: reported, the first in hosts-file order wins. */
  readonly ties: readonly number[];
  /** Every OSD holding the PG, newest first (the fallbacks for unreadable files). */
  readonly replicas: ReadonlyArray<{ osd: number; epoch: number | undefined }>;
}

/** One copy of an object on one OSD. */
export interface ObjectCopy {
  readonly osd: number;
  readonly object: InventoryObject;
  readonly epoch: number | undefined;
}

/**
 * Chooses replicas as the note's rule says: per PG, the OSD with the newest `_epoch` is
 * authoritative and only its files are used (choosing per object would resurrect
 * objects deleted after a replica went stale); `per-object` is the original tool's
 * rule, for comparison or for PGs whose authoritative replica lost files.
 */
export class ReplicaChooser {
  readonly policy: ReplicaPolicy;
  readonly pgChoices: ReadonlyMap<string, PgChoice>;
  readonly #osds: readonly OsdInventory[];
  readonly #indexes: ReadonlyArray<ReadonlyMap<string, InventoryObject>>;

  constructor(osds: readonly OsdInventory[], policy: ReplicaPolicy = 'per-pg') {
    this.policy = policy;
    this.#osds = osds;
    this.#indexes = osds.map(
      (osd) => new Map(osd.objects.map((object) => [objectId(object), object])),
    );
    this.pgChoices = choosePgReplicas(osds);
  }

  /** Copies of an object, the chosen one first, then the fallbacks (newest first). */
  copies(id: string): ObjectCopy[] {
    const all: ObjectCopy[] = [];
    for (const [osd, index] of this.#indexes.entries()) {
      const object = index.get(id);
      if (object) all.push({ osd, object, epoch: this.#osds[osd]?.pgEpochs[object.pg] });
    }
    if (all.length === 0) return [];
    all.sort((a, b) => (b.epoch ?? -1) - (a.epoch ?? -1) || a.osd - b.osd);
    if (this.policy === 'per-object') return all;
    const pg = (all[0] as ObjectCopy).object.pg;
    const owner = this.pgChoices.get(pg);
    if (owner === undefined) return all;
    const chosen = all.find((copy) => copy.osd === owner.osd);
    // The authoritative replica does not have it: the object was deleted (or never
    // reached it); copies elsewhere are stale. None is used.
    if (chosen === undefined) return [];
    return [chosen, ...all.filter((copy) => copy !== chosen)];
  }

  /** The chosen copy, or undefined when the object does not exist (per the policy). */
  choose(id: string): ObjectCopy | undefined {
    return this.copies(id)[0];
  }

  /** Index of the objects on one OSD, by objectId. */
  objectsOf(osd: number): ReadonlyMap<string, InventoryObject> {
    return this.#indexes[osd] ?? new Map();
  }

  /** Every object id present on some OSD. */
  allIds(): Set<string> {
    const ids = new Set<string>();
    for (const index of this.#indexes) for (const id of index.keys()) ids.add(id);
    return ids;
  }
}

export function choosePgReplicas(osds: readonly OsdInventory[]): Map<string, PgChoice> {
  const holders = new Map<string, Array<{ osd: number; epoch: number | undefined }>>();
  for (const [index, osd] of osds.entries()) {
    for (const pg of osd.pgs) {
      const list = getOrInsert(holders, pg, () => []);
      list.push({ osd: index, epoch: osd.pgEpochs[pg] });
    }
  }
  const choices = new Map<string, PgChoice>();
  for (const [pg, list] of holders) {
    list.sort((a, b) => (b.epoch ?? -1) - (a.epoch ?? -1) || a.osd - b.osd);
    const best = list[0] as { osd: number; epoch: number | undefined };
    const ties = list
      .slice(1)
      .filter((entry) => entry.epoch === best.epoch)
      .map((entry) => entry.osd);
    choices.set(pg, { pg, osd: best.osd, epoch: best.epoch, ties, replicas: list });
  }
  return choices;
}
