import { openKvStore as openStore } from '@x/kvstore';
import type { KvStoreOpener } from './kv.js';

/**
 * The default omap reader: @x/kvstore's read-only LevelDB/RocksDB readers (no Ceph
 * tool, nothing written to the store; warnings about what it tolerated are the
 * store's own). Loaded lazily: list/lookup/recover never need it.
 */
export const openKvStore: KvStoreOpener = (directory, options) => openStore(directory, options);
