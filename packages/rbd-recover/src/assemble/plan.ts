import { posix } from 'node:path';
import { RbdRecoverError } from '../errors.js';
import { decodeSnapSet, type SnapSet, sourceAtSnapshot } from '../format/snapset.js';
import { objectId } from '../inventory/inventory-types.js';
import { getOrInsert } from '../map-utils.js';
import type { Catalog } from '../metadata/catalog.js';
import { dataObjectName, type ImageInfo, objectSize } from '../metadata/image-types.js';
import type { ObjectCopy } from '../replica.js';
import type { CommandOptions } from '../transport/osd-commands.js';
import { readXattrs } from '../transport/osd-commands.js';
import type { TransportPool } from '../transport/transport-pool.js';

/** One state of an image to rebuild: the head, or a snapshot with its own size. */
export interface ImageState {
  /** `head`, or the snapshot's name. */
  readonly label: string;
  /** undefined for the head. */
  readonly snapId: bigint | undefined;
  readonly size: number;
}

/** Why an object region of a state holds what it holds. */
export type RegionSource =
  | { kind: 'copy'; copies: ObjectCopy[]; via: 'head' | 'clone' | 'clone-by-name' }
  /** The object did not exist in this state: zeros, as RBD reads it. */
  | { kind: 'absent' }
  /** The SnapSet names a clone no OSD has: zero-filled and reported. */
  | { kind: 'missing'; reason: string };

export interface PlannedRegion {
  readonly index: number;
  readonly offset: number;
  readonly length: number;
  readonly source: RegionSource;
}

export interface StatePlan {
  readonly state: ImageState;
  readonly regions: readonly PlannedRegion[];
}

const SNAPSET_XATTR = 'user.ceph.snapset';

export function imageStates(image: ImageInfo, which: 'head' | 'all' | string): ImageState[] {
  const head: ImageState = { label: 'head', snapId: undefined, size: image.size };
  const snaps = image.snapshots.map((snap) => ({
    label: snap.name,
    snapId: snap.id,
    size: snap.size,
  }));
  if (which === 'head') return [head];
  if (which === 'all') return [...snaps, head];
  const snap = snaps.find((s) => s.label === which);
  if (!snap) {
    throw new RbdRecoverError(
      'NOT_FOUND',
      `image "${image.name}" has no snapshot "${which}" (snapshots: ${snaps.map((s) => s.label).join(', ') || 'none'})`,
    );
  }
  return [snap];
}

/**
 * Decides, for every object region of every state, where its bytes come from: the
 * chosen replica's head for the head; for a snapshot the SnapSet rule (sourceAtSnapshot),
 * reading the SnapSets of the image's head objects from their xattrs in one getfattr
 * run per OSD (or from omap where FileStore spilled them).
 */
export async function planStates(
  catalog: Catalog,
  image: ImageInfo,
  states: readonly ImageState[],
  transports: TransportPool,
  options: CommandOptions & { problems: string[] },
): Promise<StatePlan[]> {
  const size = objectSize(image);
  const count = Math.max(0, ...states.map((state) => Math.ceil(state.size / size)));
  const chooser = catalog.chooser;
  const id = (index: number, snap: string) =>
    objectId({
      pool: image.pool.id,
      namespace: image.namespace,
      name: dataObjectName(image, index),
      snap,
    });
  const heads = new Map<number, ObjectCopy[]>();
  for (let index = 0; index < count; index++) {
    const copies = chooser.copies(id(index, 'head'));
    if (copies.length > 0) heads.set(index, copies);
  }

  const snapSets = new Map<number, SnapSet | undefined>();
  if (states.some((state) => state.snapId !== undefined)) {
    await readSnapSets(catalog, heads, count, id, transports, options, snapSets);
  }
  // Clone snap ids by object name, over every OSD: for objects without a SnapSet.
  const cloneIds = new Map<string, Set<bigint>>();
  for (const osd of catalog.inventory.osds) {
    for (const object of osd.objects) {
      if (object.pool !== image.pool.id || object.namespace !== image.namespace) continue;
      if (!object.name.startsWith(`${image.prefix}.`) || !/^[0-9a-f]+$/.test(object.snap)) continue;
      const ids = getOrInsert(cloneIds, object.name, () => new Set());
      ids.add(BigInt(`0x${object.snap}`));
    }
  }
  const clonesByName = (index: number): bigint[] =>
    [...(cloneIds.get(dataObjectName(image, index)) ?? [])].sort((a, b) =>
      a < b ? -1 : a > b ? 1 : 0,
    );

  return states.map((state) => {
    const regions: PlannedRegion[] = [];
    const objects = Math.ceil(state.size / size);
    for (let index = 0; index < objects; index++) {
      const offset = index * size;
      const length = Math.min(size, state.size - offset);
      const head = heads.get(index);
      let source: RegionSource;
      if (state.snapId === undefined) {
        source = head ? { kind: 'copy', copies: head, via: 'head' } : { kind: 'absent' };
      } else {
        source = snapshotSource(
          state.snapId,
          index,
          head,
          snapSets.get(index),
          clonesByName,
          (snap) => chooser.copies(id(index, snap)),
        );
      }
      regions.push({ index, offset, length, source });
    }
    return { state, regions };
  });
}

function snapshotSource(
  snap: bigint,
  index: number,
  head: ObjectCopy[] | undefined,
  snapSet: SnapSet | undefined,
  clonesByName: (index: number) => bigint[],
  copiesOf: (snap: string) => ObjectCopy[],
): RegionSource {
  if (snapSet !== undefined) {
    const from = sourceAtSnapshot(snapSet, snap);
    if (from === 'absent') return { kind: 'absent' };
    if (from === 'head')
      return head ? { kind: 'copy', copies: head, via: 'head' } : { kind: 'absent' };
    const copies = copiesOf(from.toString(16));
    if (copies.length === 0) {
      return { kind: 'missing', reason: `clone ${from} named by the SnapSet is on no OSD read` };
    }
    return { kind: 'copy', copies, via: 'clone' };
  }
  // No SnapSet (head and snapdir gone or unreadable): the clone naming rule, reported.
  const clone = clonesByName(index).find((id) => id >= snap);
  if (clone !== undefined) {
    const copies = copiesOf(clone.toString(16));
    if (copies.length > 0) return { kind: 'copy', copies, via: 'clone-by-name' };
  }
  if (head) return { kind: 'copy', copies: head, via: 'head' };
  return { kind: 'absent' };
}

async function readSnapSets(
  catalog: Catalog,
  heads: ReadonlyMap<number, ObjectCopy[]>,
  count: number,
  id: (index: number, snap: string) => string,
  transports: TransportPool,
  options: CommandOptions & { problems: string[] },
  into: Map<number, SnapSet | undefined>,
): Promise<void> {
  // Where each object's SnapSet is: its chosen head, else its chosen snapdir.
  const holders = new Map<number, ObjectCopy>();
  for (let index = 0; index < count; index++) {
    const copy = heads.get(index)?.[0] ?? catalog.chooser.choose(id(index, 'snapdir'));
    if (copy) holders.set(index, copy);
  }
  const byOsd = new Map<number, Array<[number, ObjectCopy]>>();
  for (const entry of holders) {
    const list = getOrInsert(byOsd, entry[1].osd, () => []);
    list.push(entry);
  }
  for (const [osdIndex, entries] of byOsd) {
    const osd = catalog.inventory.osds[osdIndex];
    if (!osd) continue;
    const current = posix.join(osd.osd.dataPath, 'current');
    const spilled = (copy: ObjectCopy) => osd.spilledSnapSets[objectId(copy.object)];
    // SnapSets FileStore spilled into omap came with the inventory: getfattr only for the rest.
    const onDisk = entries.filter(([, copy]) => spilled(copy) === undefined);
    const xattrs =
      onDisk.length === 0
        ? new Map<string, Map<string, Buffer>>()
        : await readXattrs(
            await transports.get(osd.osd),
            current,
            onDisk.map(([, copy]) => copy.object.path),
            '^user\\.ceph\\.snapset',
            options,
          );
    for (const [index, copy] of entries) {
      const where = `${osd.osd.host}:${current}/${copy.object.path}`;
      const hex = spilled(copy);
      const raw =
        hex !== undefined
          ? Buffer.from(hex, 'hex')
          : xattrs.get(copy.object.path)?.get(SNAPSET_XATTR);
      if (raw === undefined) {
        options.problems.push(
          `${where}: no SnapSet xattr; snapshot contents of object ${index} inferred from clone names`,
        );
        into.set(index, undefined);
        continue;
      }
      try {
        into.set(index, decodeSnapSet(raw, where));
      } catch (error) {
        options.problems.push(
          `${(error as Error).message}; snapshot contents of object ${index} inferred from clone names`,
        );
        into.set(index, undefined);
      }
    }
  }
}
