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
