export { type BackingPolicy, MAX_BACKING_DEPTH } from './backing/policy.js';
export { RawBackingFile } from './backing/raw-backing-file.js';
export { TableCache, type TableCacheOptions } from './cache/table-cache.js';
// Diagnosis and repair (check, dump, repair, undo, hand edits).
export { type AnalyseOptions, analyseImage, type ImageAnalysis } from './check/analyse.js';
export {
  type CheckImageOptions,
  type CheckMode,
  checkDevice,
  checkImage,
} from './check/check-image.js';
export type { L2EntryDescription } from './check/describe-entry.js';
export { formatCheckReport, formatFinding } from './check/format-report.js';
export { type HeaderFacts, readHeaderFacts } from './check/header-facts.js';
export { type ImageFacts, inspectImage } from './check/inspect.js';
export { RefcountTally } from './check/refcount-tally.js';
export {
  CHECK_EXIT_CLEAN,
  CHECK_EXIT_COPIED,
  CHECK_EXIT_CORRUPT,
  CHECK_EXIT_COULD_NOT_RUN,
  CHECK_EXIT_FLAGGED,
  CHECK_EXIT_LEAKS,
  CHECK_EXIT_REFCOUNT,
  CHECK_EXIT_SNAPSHOT_TABLE,
  type CheckFinding,
  type CheckReport,
  type CheckVerdict,
  FINDING_EXIT_CODES,
  type FindingKind,
  type FindingReference,
  type PreallocationMode,
} from './check/report.js';
export type { L2EntryEvent, WalkOwner } from './check/walk-tables.js';
export { type CompressionType, decompressCluster } from './compression/decompress.js';
export {
  type ConvertResult,
  type ConvertToRawOptions,
  convertToRaw,
  copyToRawFile,
} from './convert/convert-to-raw.js';
export {
  checkInputUnchanged,
  detectFormat,
  type InputFormat,
  type OpenedInput,
  type OpenInputOptions,
  openInput,
} from './convert/open-input.js';
export { type CreateQcow2Options, createQcow2 } from './create/create-qcow2.js';
export {
  DUMP_SECTIONS,
  type DumpOptions,
  type DumpRecord,
  type DumpSection,
  dumpImage,
} from './dump/dump-image.js';
export { type PokeOptions, type PokeResult, pokeImage } from './edit/poke.js';
export {
  type HeaderFlag,
  type SetFeatureOptions,
  type SetFeatureResult,
  setFeature,
} from './edit/set-feature.js';
export { Qcow2Error, type Qcow2ErrorCode } from './errors.js';
export * from './format/constants.js';
export { Qcow2Geometry } from './format/geometry.js';
export {
  decodeHeader,
  encodeHeader,
  headerFieldOffsets,
  type Qcow2Header,
  qcow2HeaderV2,
  qcow2HeaderV3Additions,
} from './format/header.js';
export {
  type BitmapsExtension,
  type CryptoHeaderExtension,
  encodeFeatureNameTable,
  encodeHeaderExtensions,
  type FeatureName,
  type FeatureType,
  featureNameEntry,
  type HeaderExtension,
  type HeaderExtensions,
  nameFeatureBits,
  parseHeaderExtensions,
  QEMU_FEATURE_NAMES,
} from './format/header-extensions.js';
export {
  type Qcow2Metadata,
  type ReadMetadataOptions,
  readQcow2Metadata,
} from './format/image-metadata.js';
export {
  encodeSnapshotExtraData,
  encodeSnapshotTable,
  parseSnapshotTable,
  type Snapshot,
  snapshotEntryHeader,
  snapshotExtraData,
} from './format/snapshot-table.js';
export * from './format/table-entries.js';
export { L1Table } from './image/l1-table.js';
export {
  DEFAULT_L2_CACHE_BYTES,
  findSnapshot,
  type OpenQcow2Options,
  openQcow2,
} from './image/open.js';
export { Qcow2Image, type Qcow2ImageParts } from './image/qcow2-image.js';
export type { Qcow2WritePath, Qcow2WritePathFactory } from './image/write-path.js';
export { type AllocationFigures, allocationFigures } from './info/allocation.js';
export {
  backingChainInfo,
  type HeaderExtensionInfo,
  type ImageInfo,
  type ImageInfoOptions,
  imageInfo,
  type Qcow2FormatSpecific,
  type SnapshotInfo,
} from './info/image-info.js';
export { type MapEntry, mapEntries, mapImage } from './map/map-image.js';
export { detectMetadataPreallocation } from './map/metadata-preallocation.js';
export type { GuestMapping, MappingType } from './read/guest-mapping.js';
export { readBacking } from './read/read-path.js';
export type { PlannedWrite } from './repair/metadata-writer.js';
export type { RefcountStructurePlan } from './repair/rebuild-structure.js';
export {
  type RepairOptions,
  type RepairResult,
  rebuildRefcounts,
  repairImage,
} from './repair/repair-image.js';
export type { CreateSnapshotOptions } from './snapshot/snapshot-operations.js';
export {
  applySnapshot,
  createSnapshot,
  deleteSnapshot,
  deleteSnapshotsExcept,
  listSnapshots,
  type SnapshotCommandOptions,
  type SnapshotEntry,
} from './snapshot/snapshots.js';
export {
  readUndoLog,
  UNDO_LOG_SUFFIX,
  type UndoRecord,
  type UndoSession,
  undoLogPath,
} from './undo/undo-log.js';
export { type UndoOptions, type UndoResult, undoRepair } from './undo/undo-repair.js';
export { deflateCluster } from './write/deflate-cluster.js';
export type { Preallocation } from './write/resize.js';
export { Qcow2Writer, type WriteZeroesOptions } from './write/writer.js';
