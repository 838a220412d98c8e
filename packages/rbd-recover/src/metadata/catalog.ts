import { RbdRecoverError } from '../errors.js';
import {
  decodeClsRbdSnapshot,
  decodeRbdString,
  decodeTmapNames,
  decodeU8,
  decodeU64,
} from '../format/cls-rbd.js';
import { decodeRbdV1Header, RBD_SUFFIX } from '../format/rbd-v1-header.js';
import { objectId } from '../inventory/inventory-types.js';
import type { LoadedInventory } from '../inventory/workdir.js';
import { getOrInsert } from '../map-utils.js';
import { ReplicaChooser, type ReplicaPolicy } from '../replica.js';
import type { ImageInfo, ImageRef, ImageSpec, PoolInfo, SnapshotInfo } from './image-types.js';

export interface CatalogOptions {
  policy?: ReplicaPolicy | undefined;
  /** Pool names given by the user (`--pool-name 1=rbd`); they win over the OSD map's. */
  poolNames?: Record<string, string> | undefined;
}

/** Image metadata the user gives where it is lost (`--prefix`, `--size`, `--order`). */
export interface ManualMetadata {
  prefix?: string | undefined;
  size?: number | undefined;
  order?: number | undefined;
}

const RBD_ID = 'rbd_id.';
const RBD_HEADER = 'rbd_header.';

/**
 * RBD's view of an inventory: pools, namespaces, images and their metadata, read
 * from the chosen replica of each metadata object (the same per-PG rule as data).
 */
export class Catalog {
  readonly inventory: LoadedInventory;
  readonly chooser: ReplicaChooser;
  readonly pools: ReadonlyMap<number, PoolInfo>;
  /** The OSD map epoch pool names came from, when one was read. */
  readonly osdMapEpoch: number | undefined;

  constructor(inventory: LoadedInventory, options: CatalogOptions = {}) {
    this.inventory = inventory;
    this.chooser = new ReplicaChooser(inventory.osds, options.policy ?? 'per-pg');
    let newest: { epoch: number; pools: Record<string, string> } | undefined;
    for (const osd of inventory.osds) {
      if (osd.osdMap && (newest === undefined || osd.osdMap.epoch > newest.epoch))
        newest = osd.osdMap;
    }
    this.osdMapEpoch = newest?.epoch;
    const names: Record<string, string> = {
      ...(newest?.pools ?? {}),
      ...inventory.index.poolNames,
      ...(options.poolNames ?? {}),
    };
    const pools = new Map<number, PoolInfo>();
    for (const osd of inventory.osds) {
      for (const object of osd.objects) {
        if (object.pool >= 0 && !pools.has(object.pool)) {
          pools.set(object.pool, { id: object.pool, name: names[String(object.pool)] });
        }
      }
    }
    this.pools = new Map([...pools].sort((a, b) => a[0] - b[0]));
  }

  /** A pool by id (decimal) or name; a name that is also another pool's id is AMBIGUOUS. */
  resolvePool(text: string): PoolInfo {
    const byName = [...this.pools.values()].filter((pool) => pool.name === text);
    const byId = /^\d+$/.test(text) ? this.pools.get(Number(text)) : undefined;
    if (byName.length > 1) {
      throw new RbdRecoverError(
        'AMBIGUOUS',
        `${byName.length} pools are named "${text}"; name it by id`,
      );
    }
    if (byId && byName[0] && byName[0] !== byId) {
      throw new RbdRecoverError(
        'AMBIGUOUS',
        `"${text}" is pool ${byId.id}'s id and pool ${byName[0].id}'s name`,
      );
    }
    const pool = byId ?? byName[0];
    if (pool) return pool;
    const known = [...this.pools.values()].map((p) =>
      p.name ? `${p.id} (${p.name})` : String(p.id),
    );
    throw new RbdRecoverError(
      'NOT_FOUND',
      `no pool "${text}" in the inventory (pools: ${known.join(', ') || 'none'})${/^\d+$/.test(text) ? '' : '; without a readable OSD map, name pools by id or give --pool-name ID=NAME'}`,
    );
  }

  /** The chosen replica's omap of a head object, keys decoded. */
  omap(pool: number, namespace: string, name: string): Map<string, Buffer> | undefined {
    const id = objectId({ pool, namespace, name, snap: 'head' });
    const copy = this.chooser.choose(id);
    const osd = copy ? this.inventory.osds[copy.osd] : undefined;
    const record = osd?.omap[id];
    if (!record) {
      // A header without data file (it is 0 bytes and may be absent): any OSD's omap.
      if (copy) return undefined;
      for (const other of this.inventory.osds) {
        const found = other.omap[id];
        if (found) return decodeEntries(found.entries);
      }
      return undefined;
    }
    return decodeEntries(record.entries);
  }

  /** The chosen replica's data of a small metadata object (kept by database). */
  data(pool: number, namespace: string, name: string): Buffer | undefined {
    const id = objectId({ pool, namespace, name, snap: 'head' });
    const copy = this.chooser.choose(id);
    if (!copy) return undefined;
    const hex = this.inventory.osds[copy.osd]?.data[id];
    return hex === undefined ? undefined : Buffer.from(hex, 'hex');
  }

  /** Where a metadata object's omap/data came from, for messages. */
  whereIs(pool: number, namespace: string, name: string): string {
    const copy = this.chooser.choose(objectId({ pool, namespace, name, snap: 'head' }));
    const osd = copy ? this.inventory.osds[copy.osd] : undefined;
    return osd ? `${osd.osd.host}:${osd.osd.dataPath}/current/${copy?.object.path}` : name;
  }

  /** Every image of every pool and namespace (or of one pool), sorted. */
  listImages(poolText?: string): ImageRef[] {
    const pools = poolText === undefined ? [...this.pools.values()] : [this.resolvePool(poolText)];
    const wanted = new Set(pools.map((pool) => pool.id));
    // (pool, namespace) → name → ref
    const found = new Map<string, Map<string, ImageRef>>();
    const add = (ref: ImageRef) => {
      const key = `${ref.pool.id}\0${ref.namespace}`;
      const images = getOrInsert(found, key, () => new Map());
      const existing = images.get(ref.name);
      if (!existing || (existing.format === 1 && ref.format === 2)) images.set(ref.name, ref);
    };
    const spaces = new Set<string>();
    const seen = new Set<string>();
    for (const osd of this.inventory.osds) {
      for (const object of osd.objects) {
        if (!wanted.has(object.pool) || object.snap !== 'head') continue;
        const id = objectId(object);
        if (seen.has(id)) continue;
        seen.add(id);
        const pool = this.pools.get(object.pool) as PoolInfo;
        if (object.name === 'rbd_directory') spaces.add(`${object.pool}\0${object.namespace}`);
        if (!this.chooser.choose(id)) continue; // deleted on the authoritative replica
        if (object.name.startsWith(RBD_ID)) {
          const data = this.data(object.pool, object.namespace, object.name);
          let imageId: string | undefined;
          try {
            imageId = data ? decodeRbdString(data, 'rbd_id') : undefined;
          } catch {
            imageId = undefined;
          }
          add({
            pool,
            namespace: object.namespace,
            name: object.name.slice(RBD_ID.length),
            format: 2,
            id: imageId,
          });
        } else if (
          object.name.endsWith(RBD_SUFFIX) &&
          object.namespace === '' &&
          object.name.length > RBD_SUFFIX.length
        ) {
          add({ pool, namespace: '', name: object.name.slice(0, -RBD_SUFFIX.length), format: 1 });
        }
      }
    }
    for (const space of spaces) {
      const [poolId, namespace = ''] = space.split('\0');
      const pool = this.pools.get(Number(poolId)) as PoolInfo;
      const omap = this.omap(pool.id, namespace, 'rbd_directory');
      for (const [key, value] of omap ?? []) {
        if (!key.startsWith('name_')) continue;
        let imageId: string | undefined;
        try {
          imageId = decodeRbdString(value, 'rbd_directory name_ value');
        } catch {
          imageId = undefined;
        }
        add({ pool, namespace, name: key.slice(5), format: 2, id: imageId });
      }
      if (namespace === '') {
        const data = this.data(pool.id, '', 'rbd_directory');
        let names: string[] = [];
        try {
          names = data ? decodeTmapNames(data) : [];
        } catch {
          names = [];
        }
        for (const name of names) add({ pool, namespace: '', name, format: 1 });
      }
    }
    const images = [...found.values()].flatMap((map) => [...map.values()]);
    return images.sort(
      (a, b) =>
        a.pool.id - b.pool.id ||
        compareText(a.namespace, b.namespace) ||
        compareText(a.name, b.name),
    );
  }

  /** Finds an image by spec and reads its metadata (`lookup`). */
  lookup(spec: ImageSpec, manual: ManualMetadata = {}): ImageInfo {
    const pool = this.resolvePool(spec.pool);
    if (manual.prefix !== undefined) return this.#manualImage(pool, spec, manual);
    const matches = this.listImages(String(pool.id)).filter(
      (image) =>
        image.pool.id === pool.id &&
        image.namespace === spec.namespace &&
        image.name === spec.image,
    );
    const ref = matches[0];
    if (ref === undefined) {
      throw new RbdRecoverError(
        'NOT_FOUND',
        `no image "${spec.image}" in pool ${describePool(pool)}${spec.namespace ? ` namespace "${spec.namespace}"` : ''} (see list; where metadata is lost, give --prefix, --size and --order)`,
      );
    }
    const info = ref.format === 1 ? this.#formatOne(ref) : this.#formatTwo(ref);
    if (manual.size !== undefined || manual.order !== undefined) {
      return {
        ...info,
        size: manual.size ?? info.size,
        order: manual.order ?? info.order,
        inferred: true,
      };
    }
    return info;
  }

  #formatOne(ref: ImageRef): ImageInfo {
    const headerName = `${ref.name}${RBD_SUFFIX}`;
    const data = this.data(ref.pool.id, ref.namespace, headerName);
    if (data === undefined) {
      throw new RbdRecoverError(
        'NOT_FOUND',
        `the header object ${headerName} of format 1 image "${ref.name}" is not on any OSD read; give --prefix, --size and --order`,
      );
    }
    const header = decodeRbdV1Header(data, this.whereIs(ref.pool.id, ref.namespace, headerName));
    return {
      ...ref,
      prefix: header.prefix,
      order: header.order,
      size: header.size,
      features: undefined,
      snapSeq: header.snapSeq,
      snapshots: [...header.snapshots].sort((a, b) => compareBig(a.id, b.id)),
      inferred: false,
      problems: [],
    };
  }

  #formatTwo(ref: ImageRef): ImageInfo {
    const problems: string[] = [];
    let id = ref.id;
    if (id === undefined) {
      const data = this.data(ref.pool.id, ref.namespace, `${RBD_ID}${ref.name}`);
      if (data)
        id = decodeRbdString(
          data,
          'rbd_id',
          this.whereIs(ref.pool.id, ref.namespace, `${RBD_ID}${ref.name}`),
        );
    }
    if (id === undefined) {
      throw new RbdRecoverError(
        'NOT_FOUND',
        `the id of image "${ref.name}" is lost (no rbd_id object, no rbd_directory entry); give --prefix, --size and --order`,
      );
    }
    const headerName = `${RBD_HEADER}${id}`;
    const omap = this.omap(ref.pool.id, ref.namespace, headerName);
    const where = this.whereIs(ref.pool.id, ref.namespace, headerName);
    if (
      omap === undefined ||
      !omap.has('size') ||
      !omap.has('object_prefix') ||
      !omap.has('order')
    ) {
      throw new RbdRecoverError(
        'NOT_FOUND',
        `the omap of ${headerName} (image "${ref.name}") is lost; give --prefix rbd_data.${id}, --size and --order`,
      );
    }
    const get = (key: string) => omap.get(key) as Buffer;
    const sizeValue = decodeU64(get('size'), 'size', where);
    if (sizeValue > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new RbdRecoverError('BAD_OMAP', `image size ${sizeValue} beyond 2^53 - 1`, {
        path: where,
      });
    }
    const snapshots: SnapshotInfo[] = [];
    for (const [key, value] of omap) {
      if (!key.startsWith('snapshot_')) continue;
      try {
        snapshots.push(decodeClsRbdSnapshot(value, where));
      } catch (error) {
        problems.push(`${key}: ${(error as Error).message}`);
      }
    }
    snapshots.sort((a, b) => compareBig(a.id, b.id));
    if (omap.has('parent'))
      problems.push('a clone (layered) image: data of its parent is not included');
    if (omap.has('data_pool_id'))
      problems.push('data objects live in a separate data pool: not supported');
    if (omap.has('stripe_unit')) {
      const unit = decodeU64(get('stripe_unit'), 'stripe_unit', where);
      const count = omap.has('stripe_count')
        ? decodeU64(get('stripe_count'), 'stripe_count', where)
        : 1n;
      const order = decodeU8(get('order'), 'order', where);
      if (count !== 1n || unit !== 1n << BigInt(order)) {
        problems.push(`striping v2 (stripe_unit ${unit}, stripe_count ${count}) is not supported`);
      }
    }
    return {
      ...ref,
      id,
      prefix: decodeRbdString(get('object_prefix'), 'object_prefix', where),
      order: decodeU8(get('order'), 'order', where),
      size: Number(sizeValue),
      features: omap.has('features') ? decodeU64(get('features'), 'features', where) : undefined,
      snapSeq: omap.has('snap_seq') ? decodeU64(get('snap_seq'), 'snap_seq', where) : undefined,
      snapshots,
      inferred: false,
      problems,
    };
  }

  /** --prefix given: everything else from the object names (and --size/--order). */
  #manualImage(pool: PoolInfo, spec: ImageSpec, manual: ManualMetadata): ImageInfo {
    const prefix = manual.prefix as string;
    const order = manual.order ?? 22;
    if (!Number.isInteger(order) || order < 12 || order > 25) {
      throw new RbdRecoverError('BAD_SPEC', `--order ${order} is not between 12 and 25`);
    }
    const format: 1 | 2 = prefix.startsWith('rb.') ? 1 : 2;
    const digits = format === 1 ? 12 : 16;
    const pattern = new RegExp(`^${escapeRegExp(prefix)}\\.([0-9a-f]{${digits}})$`);
    let highest = -1;
    const snapIds = new Set<bigint>();
    for (const osd of this.inventory.osds) {
      for (const object of osd.objects) {
        if (object.pool !== pool.id || object.namespace !== spec.namespace) continue;
        const match = pattern.exec(object.name);
        if (!match) continue;
        highest = Math.max(highest, Number.parseInt(match[1] as string, 16));
        if (object.snap !== 'head' && object.snap !== 'snapdir')
          snapIds.add(BigInt(`0x${object.snap}`));
      }
    }
    if (highest < 0) {
      throw new RbdRecoverError(
        'NOT_FOUND',
        `no data object named ${prefix}.<index> in pool ${describePool(pool)}`,
      );
    }
    const size = manual.size ?? (highest + 1) * 2 ** order;
    return {
      pool,
      namespace: spec.namespace,
      name: spec.image,
      format,
      prefix,
      order,
      size,
      features: undefined,
      snapSeq: undefined,
      snapshots: [...snapIds].sort(compareBig).map((id) => ({ id, name: String(id), size })),
      inferred: true,
      problems: ['metadata given by hand: snapshots are named by id and sized as the head'],
    };
  }
}

function decodeEntries(entries: Record<string, string>): Map<string, Buffer> {
  return new Map(
    Object.entries(entries).map(([key, value]) => [
      Buffer.from(key, 'hex').toString('utf8'),
      Buffer.from(value, 'hex'),
    ]),
  );
}

export function describePool(pool: PoolInfo): string {
  return pool.name === undefined ? String(pool.id) : `${pool.name} (${pool.id})`;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
