export {
  type CatalogOptions,
  createInventory,
  type DatabaseOptions,
  listImages,
  lookupImage,
  openCatalog,
} from './api.js';
export {
  type ImageState,
  imageStates,
  type PlannedRegion,
  type RegionSource,
  type StatePlan,
} from './assemble/plan.js';
export type { ReplicaConflict } from './assemble/tied-replicas.js';
export {
  isRbdRecoverError,
  RbdRecoverError,
  type RbdRecoverErrorCode,
  type RbdRecoverErrorOptions,
} from './errors.js';
export {
  escapeObjectFileName,
  FILENAME_PREFIX_LENGTH,
  FILENAME_SHORT_LENGTH,
  isLongFileName,
  LONG_NAME_XATTR,
  longFileName,
  objectFileName,
  parseObjectFileName,
} from './filestore/file-name.js';
export { describeObject, hashText, type ObjectName, snapText } from './filestore/object-name.js';
export {
  HOBJ_TO_SEQ,
  headerSeq,
  omapObjectKey,
  parseOmapObjectKey,
  rawKey,
  userPrefix,
  xattrPrefix,
} from './filestore/omap-keys.js';
export { parseXattrDump } from './filestore/xattr-dump.js';
export {
  type ClsRbdSnapshot,
  decodeClsRbdSnapshot,
  decodeRbdString,
  decodeTmapNames,
} from './format/cls-rbd.js';
export { decodeOsdMapPools, type OsdMapPools } from './format/osdmap.js';
export {
  type DecodedV1Header,
  decodeRbdV1Header,
  RBD_HEADER_TEXT,
  rbdV1HeaderStruct,
} from './format/rbd-v1-header.js';
export { decodeSnapSet, type SnapSet, sourceAtSnapshot } from './format/snapset.js';
export {
  LOCAL_HOST,
  type OsdLocation,
  parseHostsFile,
  readHostsFile,
  type SshAddress,
} from './hosts-file.js';
export type { InventorySummary } from './inventory/build-inventory.js';
export {
  INVENTORY_VERSION,
  type InventoryObject,
  type OsdInventory,
  objectId,
} from './inventory/inventory-types.js';
export { INVENTORY_DIRECTORY, type LoadedInventory, loadInventory } from './inventory/workdir.js';
export type { KvStore, KvStoreOpener } from './kv.js';
export { Catalog, describePool, type ManualMetadata } from './metadata/catalog.js';
export { parseImageSpec } from './metadata/image-spec.js';
export {
  dataObjectName,
  type ImageInfo,
  type ImageRef,
  type ImageSpec,
  objectSize,
  type PoolInfo,
  type SnapshotInfo,
} from './metadata/image-types.js';
export {
  type RecoverOptions,
  type RecoverReport,
  rawStateFileName,
  recoverImage,
  type StateReport,
} from './recover.js';
export {
  choosePgReplicas,
  type ObjectCopy,
  type PgChoice,
  ReplicaChooser,
  type ReplicaPolicy,
} from './replica.js';
export { LocalTransport } from './transport/local-transport.js';
export { findRunningOsd, osdProcessUsing } from './transport/osd-commands.js';
export type { SshOptions } from './transport/ssh-options.js';
export { readTarStream, type TarEntryHandler, type TarSink } from './transport/tar-reader.js';
export type {
  CommandResult,
  HostTransport,
  RunningCommand,
  RunOptions,
} from './transport/transport.js';
export { createTransportPool, type TransportPool } from './transport/transport-pool.js';
