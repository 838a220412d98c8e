import { RefcountTally } from './refcount-tally.js';

/** Kinds of metadata structures, as QEMU's overlap checks name them. */
export const METADATA_KINDS = [
  'qcow2 header',
  'active L1 table',
  'active L2 table',
  'refcount table',
  'refcount block',
  'snapshot table',
  'inactive L1 table',
  'inactive L2 table',
  'bitmap directory',
  'bitmap table',
  'crypto header',
] as const;
export type MetadataKind = (typeof METADATA_KINDS)[number];
const KIND_NUMBER = new Map<MetadataKind, number>(
  METADATA_KINDS.map((kind, index) => [kind, index]),
);
const ACTIVE_L2 = KIND_NUMBER.get('active L2 table') as number;
const INACTIVE_L2 = KIND_NUMBER.get('inactive L2 table') as number;

/** Owner of a structure: the active image, a snapshot (its index), or the image as a whole. */
export const OWNER_ACTIVE = -1;
export const OWNER_IMAGE = -2;

export interface MetadataExtent {
  kind: MetadataKind;
  /** First host cluster. */
  cluster: number;
  /** Clusters covered. */
  clusters: number;
  owner: number;
  /** Index that names it: the L1 index of an L2 table, the refcount table index of a block, … */
  index: number;
}

/**
 * Every metadata structure's clusters, collected before the data walk so data
 * entries pointing into metadata (including the hazard where qemu-img's repair
 * "fixes" an L2 entry aliasing the L1 table by bumping its refcount) can be
 * recognised whatever the refcounts say.
 */
export class MetadataMap {
  readonly clusterSize: number;
  #count = 0;
  #clusters = new Float64Array(256);
  #lengths = new Float64Array(256);
  #kinds = new Uint8Array(256);
  #owners = new Int32Array(256);
  #indexes = new Float64Array(256);
  #order: Uint32Array | undefined;
  #longest = 1;
  readonly #perKind = new Float64Array(METADATA_KINDS.length);
  /** Saturating counts of metadata per cluster, for the fast "does this run touch metadata?" test. */
  readonly #presence = new RefcountTally({ saturating: true });

  constructor(clusterSize: number) {
    this.clusterSize = clusterSize;
  }

  get size(): number {
    return this.#count;
  }

  /** Records a structure occupying bytes [offset, offset + length). */
  add(kind: MetadataKind, offset: number, length: number, owner: number, index = 0): void {
    if (length <= 0) return;
    const first = Math.floor(offset / this.clusterSize);
    const clusters = Math.floor((offset + length - 1) / this.clusterSize) - first + 1;
    if (this.#count === this.#clusters.length) this.#grow();
    const at = this.#count++;
    this.#clusters[at] = first;
    this.#lengths[at] = clusters;
    this.#kinds[at] = KIND_NUMBER.get(kind) as number;
    this.#owners[at] = owner;
    this.#indexes[at] = index;
    this.#longest = Math.max(this.#longest, clusters);
    const kindNumber = this.#kinds[at] as number;
    this.#perKind[kindNumber] = (this.#perKind[kindNumber] as number) + 1;
    this.#presence.addRange(first, clusters);
    this.#order = undefined;
  }

  /** How many structures of a kind were recorded. */
  countOf(kind: MetadataKind): number {
    return this.#perKind[KIND_NUMBER.get(kind) as number] as number;
  }

  /** True when any cluster of [first, first + count) holds metadata. */
  touches(first: number, count: number): boolean {
    return this.#presence.anyInRange(first, count);
  }

  /** The structures occupying `cluster`. */
  at(cluster: number): MetadataExtent[] {
    const order = this.#sorted();
    // Last extent starting at or before the cluster, then back over ones that may still cover it.
    let low = 0;
    let high = order.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.#clusters[order[middle] as number] as number) <= cluster) low = middle + 1;
      else high = middle;
    }
    const found: MetadataExtent[] = [];
    for (let position = low - 1; position >= 0; position--) {
      const at = order[position] as number;
      const start = this.#clusters[at] as number;
      if (start + this.#longest <= cluster) break;
      if (start + (this.#lengths[at] as number) > cluster) found.push(this.#extent(at));
    }
    return found;
  }

  /**
   * Calls `overlap` for every pair of structures sharing clusters, except an L2
   * table shared between the active image and snapshots (or between snapshots),
   * which is how internal snapshots work. The same L2 table used twice by one L1
   * table is reported (`sameOwner` true).
   */
  forEachOverlap(
    overlap: (a: MetadataExtent, b: MetadataExtent, sameOwner: boolean) => boolean | undefined,
  ): void {
    const order = this.#sorted();
    const open: number[] = [];
    // An L2 table shared by many L1 tables is represented once in `open`, with the owners seen.
    const l2Owners = new Map<number, Set<number>>();
    for (const at of order) {
      const start = this.#clusters[at] as number;
      for (let i = open.length - 1; i >= 0; i--) {
        const other = open[i] as number;
        if ((this.#clusters[other] as number) + (this.#lengths[other] as number) <= start) {
          open.splice(i, 1);
          l2Owners.delete(other);
        }
      }
      const owner = this.#owners[at] as number;
      let shared = false;
      for (const other of open) {
        if (isL2(this.#kinds[at] as number) && this.#clusters[other] === start) {
          const owners = l2Owners.get(other);
          if (owners !== undefined) {
            shared = true;
            if (owners.has(owner)) {
              if (overlap(this.#extent(other), this.#extent(at), true) === false) return;
            }
            owners.add(owner);
            continue;
          }
        }
        if (overlap(this.#extent(other), this.#extent(at), false) === false) return;
      }
      if (!shared) {
        open.push(at);
        if (isL2(this.#kinds[at] as number)) l2Owners.set(at, new Set([owner]));
      }
    }
  }

  #extent(at: number): MetadataExtent {
    return {
      kind: METADATA_KINDS[this.#kinds[at] as number] as MetadataKind,
      cluster: this.#clusters[at] as number,
      clusters: this.#lengths[at] as number,
      owner: this.#owners[at] as number,
      index: this.#indexes[at] as number,
    };
  }

  #sorted(): Uint32Array {
    if (this.#order === undefined) {
      const order = new Uint32Array(this.#count);
      for (let i = 0; i < this.#count; i++) order[i] = i;
      const clusters = this.#clusters;
      // Typed-array sort with a comparator keeps memory flat for millions of L2 tables.
      order.sort((a, b) => (clusters[a] as number) - (clusters[b] as number) || a - b);
      this.#order = order;
    }
    return this.#order;
  }

  #grow(): void {
    const capacity = this.#clusters.length * 2;
    const grow = <T extends Float64Array | Uint8Array | Int32Array>(
      old: T,
      make: (n: number) => T,
    ) => {
      const next = make(capacity);
      next.set(old);
      return next;
    };
    this.#clusters = grow(this.#clusters, (n) => new Float64Array(n));
    this.#lengths = grow(this.#lengths, (n) => new Float64Array(n));
    this.#kinds = grow(this.#kinds, (n) => new Uint8Array(n));
    this.#owners = grow(this.#owners, (n) => new Int32Array(n));
    this.#indexes = grow(this.#indexes, (n) => new Float64Array(n));
  }
}

function isL2(kind: number): boolean {
  return kind === ACTIVE_L2 || kind === INACTIVE_L2;
}
