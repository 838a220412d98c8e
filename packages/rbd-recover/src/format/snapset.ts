import { CephDecoder } from './decoder.js';

/**
 * SnapSet, the `user.ceph.snapset` xattr of a head (or pre-Luminous snapdir) object
 * (osd_types.cc SnapSet::encode, version 3 on Pacific, 2 on Jewel).
 */
export interface SnapSet {
  readonly version: number;
  /** The newest snapshot id this object has seen. */
  readonly seq: bigint;
  readonly headExists: boolean;
  /** Clone snap ids, ascending. */
  readonly clones: readonly bigint[];
  /** Bytes of each clone (clone_size). */
  readonly cloneSize: ReadonlyMap<bigint, bigint>;
  /**
   * The snapshots each clone serves (version 3); undefined for older versions, where
   * the list is in each clone's object_info.
   */
  readonly cloneSnaps: ReadonlyMap<bigint, readonly bigint[]> | undefined;
}

export function decodeSnapSet(value: Uint8Array, path?: string): SnapSet {
  const outer = new CephDecoder(value, 'BAD_SNAPSET', 'SnapSet', path);
  const { version, body } = outer.envelope('SnapSet');
  if (version < 2) throw body.fail(`SnapSet version ${version} is older than this reader knows`, 0);
  const seq = body.u64('seq');
  const headExists = body.u8('head_exists') !== 0;
  const snapCount = body.count('snaps', 8);
  for (let i = 0; i < snapCount; i++) body.u64('snap');
  const cloneCount = body.count('clones', 8);
  const clones: bigint[] = [];
  for (let i = 0; i < cloneCount; i++) clones.push(body.u64('clone'));
  const overlapCount = body.count('clone_overlap', 12);
  for (let i = 0; i < overlapCount; i++) {
    body.u64('clone_overlap id');
    const intervals = body.count('clone_overlap intervals', 16);
    body.bytes(intervals * 16, 'clone_overlap intervals');
  }
  const sizeCount = body.count('clone_size', 16);
  const cloneSize = new Map<bigint, bigint>();
  for (let i = 0; i < sizeCount; i++) cloneSize.set(body.u64('clone_size id'), body.u64('size'));
  let cloneSnaps: Map<bigint, bigint[]> | undefined;
  if (version >= 3) {
    cloneSnaps = new Map();
    const count = body.count('clone_snaps', 12);
    for (let i = 0; i < count; i++) {
      const clone = body.u64('clone_snaps id');
      const snaps: bigint[] = [];
      const n = body.count('clone_snaps list', 8);
      for (let j = 0; j < n; j++) snaps.push(body.u64('clone_snaps snap'));
      cloneSnaps.set(clone, snaps);
    }
  }
  return { version, seq, headExists, clones, cloneSize, cloneSnaps };
}

/**
 * Where object content at snapshot `snap` comes from (the rule verified on the fixture):
 * the head when the snapshot is newer than the SnapSet's seq; otherwise the first
 * clone whose id is ≥ the snapshot id, if that clone serves the snapshot; otherwise
 * the object did not exist then.
 */
export function sourceAtSnapshot(snapSet: SnapSet, snap: bigint): 'head' | 'absent' | bigint {
  if (snap > snapSet.seq) return 'head';
  const clone = snapSet.clones.find((id) => id >= snap);
  if (clone === undefined) return 'absent';
  if (snapSet.cloneSnaps !== undefined) {
    const served = snapSet.cloneSnaps.get(clone);
    if (served === undefined || !served.includes(snap)) return 'absent';
  }
  return clone;
}
