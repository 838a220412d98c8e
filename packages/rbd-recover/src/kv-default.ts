import { RbdRecoverError } from './errors.js';
import type { KvStoreOpener } from './kv.js';

/**
 * The default omap reader. @x/kvstore (LevelDB and RocksDB, read-only) is being
 * written; until it is a dependency, callers pass `openKvStore`.
 */
export const openKvStore: KvStoreOpener = async (directory) => {
  throw new RbdRecoverError(
    'UNSUPPORTED',
    'no LevelDB/RocksDB reader is built in yet: pass openKvStore',
    { path: directory },
  );
};
