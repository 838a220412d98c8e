export {
  type BlobKind,
  blobKind,
  checkBlobCrc,
  decodeBlob,
  encodeBlob,
  verifyChunk,
} from './blob.js';
export { MediaCatalogBuilder } from './catalog/catalog-writer.js';
export {
  assembleMediaSet,
  INVENTORY_FILE,
  type InventoryEntry,
  loadInventory,
  type MediaSet,
  parseInventory,
} from './catalog/inventory.js';
export {
  type CatalogChunkArchive,
  type CatalogSnapshot,
  loadMediaCatalog,
  type MediaCatalog,
  parseMediaCatalog,
} from './catalog/media-catalog.js';
export { type CatalogHit, MediaSetCatalog } from './catalog/media-set-catalog.js';
export { Datastore, type InsertResult } from './datastore/datastore.js';
export { acquireLockFile, type LockOptions } from './datastore/lock-file.js';
export {
  type ChunkArchiveEnd,
  type ChunkArchiveEntry,
  chunkArchiveEntries,
} from './decode/chunk-archive.js';
export { readTapeContent, type TapeContent } from './decode/content.js';
export {
  type MediaLabel,
  type MediaSetLabel,
  readTapeLabels,
  type TapeLabels,
} from './decode/labels.js';
export { decodeFlatPxar, type PxarFile } from './decode/pxar.js';
export {
  type TapeLocation,
  TapeRestoreError,
  type TapeRestoreErrorCode,
  type TapeRestoreErrorOptions,
} from './errors.js';
export type { ContentKind } from './format/magics.js';
export { type ChunkIndex, parseChunkIndex } from './index-file.js';
export {
  isSafeFileName,
  type Manifest,
  type ManifestFile,
  manifestWithoutVerifyState,
  parseManifest,
} from './manifest.js';
export { compareWithCatalog } from './media/compare-catalog.js';
export {
  type CatalogListing,
  listMedia,
  listMediaCatalog,
  type MediaCatalogListing,
  type MediaListEntry,
} from './media/media-list.js';
export {
  type MediaDamage,
  type VerifiedFile,
  type VerifyMediaOptions,
  type VerifyMediaResult,
  verifyMedia,
} from './media/verify-media.js';
export { pxarHash } from './pxar-hash.js';
export type { RestoreBaseOptions, TaskLog } from './restore/context.js';
export {
  type RestoreMediaSetOptions,
  type RestoreMediaSetResult,
  restoreMediaSet,
} from './restore/full-restore.js';
export {
  type PlannedRead,
  type PlannedTape,
  type PlanOptions,
  planRestore,
  type RestorePlan,
} from './restore/plan.js';
export {
  DEFAULT_OWNER,
  openDatastores,
  type RestoreSnapshotsOptions,
  type RestoreSnapshotsResult,
  restoreSnapshots,
} from './restore/restore-snapshots.js';
export type { SelectedSnapshot, SkippedSnapshot } from './restore/select.js';
export { parseStoreMapping, type StoreMapping, targetStore } from './restore/store-mapping.js';
export {
  type BackupType,
  formatSnapshotPath,
  formatStoreSnapshot,
  parseSnapshotPath,
  parseStoreSnapshot,
  type SnapshotName,
  type StoreSnapshot,
} from './snapshot-name.js';
export { DdDumpDrive, openTapeDrive, VirtualTapeDrive } from './tape/host-file-drive.js';
export { newTapeReadStats, type TapeReadStats } from './tape/stats.js';
export type { NextTapeFile, TapeDrive, TapeFileSizes } from './tape/tape-drive.js';
export { type TapeFileLocation, TapeFileReader } from './tape/tape-file-reader.js';
export { formatUuid } from './uuid.js';
