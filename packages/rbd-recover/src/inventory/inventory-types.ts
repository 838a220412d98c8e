import type { OsdLocation } from '../hosts-file.js';

/** The version of the inventory files this code writes and reads. */
export const INVENTORY_VERSION = 1;
export const INVENTORY_FORMAT = 'rbd-recover-inventory';

/**
 * One object file in a PG collection: where it is and what it is. Paths are relative
 * to `current/`, as latin1 byte strings (exactly the bytes on disk).
 */
export interface InventoryObject {
  /** `<pool>.<seed hex>`, from the `<pgid>_head` directory. */
  readonly pg: string;
  readonly path: string;
  readonly size: number;
  readonly name: string;
  readonly key: string;
  readonly namespace: string;
  /** `head`, `snapdir` or the clone's snap id in lowercase hex. */
  readonly snap: string;
  /** 8 uppercase hex. */
  readonly hash: string;
  readonly pool: number;
}

/** A file under `current/` that is not an object file the tool understands. */
export interface UnparsedFile {
  readonly path: string;
  readonly reason: string;
}

/** Omap of one object (keys and values as hex), from the OSD's KV store. */
export interface ObjectOmap {
  readonly pg: string | undefined;
  readonly name: string;
  readonly namespace: string;
  readonly pool: number;
  readonly entries: Record<string, string>;
}

/** Everything `database` learned from one OSD; one file per OSD in the working directory. */
export interface OsdInventory {
  readonly format: typeof INVENTORY_FORMAT;
  readonly version: typeof INVENTORY_VERSION;
  readonly osd: OsdLocation;
  /** Position of the OSD in the hosts file: the tie-break when epochs are equal. */
  readonly index: number;
  readonly whoami: string | undefined;
  readonly kvBackend: 'leveldb' | 'rocksdb' | undefined;
  /** PG collections present (`1.0`, `1.1`, …), from their pgmeta objects. */
  readonly pgs: string[];
  /** `_epoch` of each PG's pgmeta omap. */
  readonly pgEpochs: Record<string, number>;
  readonly objects: InventoryObject[];
  readonly unparsed: UnparsedFile[];
  /** Omap of the RBD metadata objects (rbd_directory, rbd_header.*, rbd_namespace…), by object id. */
  readonly omap: Record<string, ObjectOmap>;
  /** Data of small metadata objects (rbd_id.*, *.rbd, rbd_directory), hex, by object id. */
  readonly data: Record<string, string>;
  /** SnapSets FileStore spilled into omap (`_AXATTR_` snapset), hex, by object id. */
  readonly spilledSnapSets: Record<string, string>;
  /** Pool names of the newest full OSD map on this OSD. */
  readonly osdMap: { epoch: number; pools: Record<string, string> } | undefined;
  readonly problems: string[];
  readonly createdAt: string;
}

/** An object's identity across OSDs: pool, namespace, name, key and snap. */
export function objectId(object: {
  pool: number;
  namespace: string;
  name: string;
  key?: string;
  snap: string;
}): string {
  return `${object.pool}\0${object.namespace}\0${object.name}\0${object.key ?? ''}\0${object.snap}`;
}
