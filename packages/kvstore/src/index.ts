export {
  KvStoreError,
  type KvStoreErrorCode,
  type KvStoreWarning,
  type KvStoreWarningCode,
  type WarningListener,
} from './errors.js';
export type { TableFile } from './manifest.js';
export {
  type KvEntriesOptions,
  type KvStore,
  type OpenKvStoreOptions,
  openKvStore,
  prefixSuccessor,
} from './store.js';
