/**
 * A RADOS object as FileStore names it (ghobject_t: hobject_t plus generation/shard).
 * `snap` is `head` (CEPH_NOSNAP), `snapdir` (CEPH_SNAPDIR) or the clone's snap id.
 */
export interface ObjectName {
  readonly name: string;
  /** Locator key; empty for RBD objects. */
  readonly key: string;
  readonly namespace: string;
  readonly snap: 'head' | 'snapdir' | bigint;
  /** The 32-bit object hash (its PG is a stable_mod of it). */
  readonly hash: number;
  /** Pool id; -1 for meta objects (`none`). */
  readonly pool: number;
  /** EC generation and shard, when the name carries them. */
  readonly generation?: bigint | undefined;
  readonly shard?: number | undefined;
}

/** `head`, `snapdir` or the lowercase hex id, as file names and omap keys spell it. */
export function snapText(snap: ObjectName['snap']): string {
  return typeof snap === 'bigint' ? snap.toString(16) : snap;
}

/** `8 uppercase hex`, as file names and omap keys spell a hash. */
export function hashText(hash: number): string {
  return hash.toString(16).toUpperCase().padStart(8, '0');
}

/** `<pool>/<namespace>/<name>@<snap>`-like text for messages and map keys. */
export function describeObject(object: ObjectName): string {
  const namespace = object.namespace === '' ? '' : `${object.namespace}/`;
  return `${object.pool}/${namespace}${object.name}@${snapText(object.snap)}`;
}
