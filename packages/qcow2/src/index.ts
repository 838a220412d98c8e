export { type BackingPolicy, MAX_BACKING_DEPTH } from './backing/policy.js';
export { RawBackingFile } from './backing/raw-backing-file.js';
export { TableCache, type TableCacheOptions } from './cache/table-cache.js';
export {
  type CompareOptions,
  type CompareResult,
  compareDevices,
} from './compare/compare-devices.js';
export {
  type CompareImagesOptions,
  type CompareImagesResult,
  type CompareSide,
  compareImages,
} from './compare/compare-images.js';
export { type CompressionType, decompressCluster } from './compression/decompress.js';
export type {
  ConvertResult,
  ConvertToQcow2Result,
  ConvertToRawResult,
  SalvageReport,
} from './convert/convert-result.js';
export {
  type ConvertImageOptions,
  type ConvertToQcow2Options,
  convertToQcow2,
} from './convert/convert-to-qcow2.js';
export {
  type ConvertToRawOptions,
  convertToRaw,
  copyToRawFile,
} from './convert/convert-to-raw.js';
export { copyQcow2Clusters } from './convert/copy-clusters.js';
export {
  checkInputUnchanged,
  detectFormat,
  type InputFormat,
  type OpenedInput,
  type OpenInputOptions,
  openInput,
} from './convert/open-input.js';
export { type CreateQcow2Options, createQcow2, createQcow2In } from './create/create-qcow2.js';
export * from './diagnosis.js';
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
export type { Qcow2ImageState } from './image/image-state.js';
export { L1Table } from './image/l1-table.js';
export {
  DEFAULT_L2_CACHE_BYTES,
  type OpenQcow2Options,
  openQcow2,
  type Qcow2WritePathFactory,
} from './image/open.js';
export { Qcow2Image, type Qcow2ImageParts } from './image/qcow2-image.js';
export type {
  CreateSnapshotOptions,
  Preallocation,
  PrecompressedCluster,
  Qcow2WritePath,
  ResizeOptions,
  WriteZeroesOptions,
} from './image/write-path.js';
export { type AllocationFigures, allocationFigures } from './info/allocation.js';
export {
  backingChainInfo,
  type HeaderExtensionInfo,
  type ImageInfo,
  type ImageInfoOptions,
  type InfoProblem,
  imageInfo,
  type Qcow2FormatSpecific,
  type SnapshotInfo,
} from './info/image-info.js';
export { type MapEntry, type MapOptions, mapEntries, mapImage } from './map/map-image.js';
export { mapRawEntries } from './map/map-raw.js';
export { detectMetadataPreallocation } from './map/metadata-preallocation.js';
export type { GuestMapping, MappingType } from './read/guest-mapping.js';
export { readBacking } from './read/read-path.js';
export {
  type SalvagedRange,
  SalvageLog,
  type SalvageReason,
} from './read/salvage-log.js';
export {
  type ResizeQcow2Options,
  type ResizeQcow2Result,
  resizeQcow2,
} from './resize/resize-qcow2.js';
export {
  type SequentialImageOptions,
  type SequentialImageResult,
  SequentialQcow2Image,
} from './sequential/sequential-image.js';
export {
  type FindSnapshotOptions,
  findSnapshot,
  type SnapshotIdentity,
} from './snapshot/find-snapshot.js';
export type { RescueOptions, SnapshotRescue } from './snapshot/rescue-apply.js';
export type { SnapshotApplyDamage } from './snapshot/snapshot-damage.js';
export type { SnapshotEntry } from './snapshot/snapshot-entry.js';
export {
  type AppliedSnapshot,
  applySnapshot,
  createSnapshot,
  deleteSnapshot,
  deleteSnapshotsExcept,
  listSnapshots,
  type SnapshotCommandOptions,
} from './snapshot/snapshots.js';
export { deflateCluster } from './write/deflate-cluster.js';
export { Qcow2Writer } from './write/writer.js';
export { zstdCluster } from './write/zstd-cluster.js';
