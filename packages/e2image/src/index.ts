export { type Bitmaps, readBitmaps } from './bitmaps.js';
export {
  type BlockVisitor,
  type MappingBlockKind,
  type WalkOptions,
  walkInodeBlocks,
  walkInodeBlocksSync,
} from './block-walk.js';
export {
  type ChecksumFailure,
  type ChecksummedStructure,
  ChecksumReport,
} from './checksum-report.js';
export { crc32c, crc32cUpdate } from './crc32c.js';
export {
  type DirectoryEntry,
  decodeRecordLength,
  listDirectory,
  lookupPath,
  parseDirectoryBlock,
} from './directory.js';
export {
  E2imageError,
  type E2imageErrorCode,
  type E2imageErrorOptions,
  type E2imageWarning,
  type E2imageWarningCode,
  type WarningListener,
} from './errors.js';
export {
  type FileExtent,
  fileExtents,
  InodeDevice,
  type ReadFileOptions,
  readFile,
  readSymlink,
} from './file-read.js';
export { Filesystem, type OpenFilesystemOptions } from './filesystem.js';
export * as constants from './format/constants.js';
export type { GroupDescriptor } from './format/group-descriptor.js';
export { type ImageHeader, imageHeaderStruct } from './format/image-header.js';
export { inodeStruct, type RawInode } from './format/inode.js';
export { type Superblock, superblockStruct } from './format/superblock.js';
export {
  descriptorBlockLocation,
  type Geometry,
  groupHasSuperblock,
  type SuperAndDescriptorLocation,
  superAndDescriptorLocation,
} from './geometry.js';
export { type FileType, Inode } from './inode.js';
export {
  type InodeChunk,
  type IterateInodesOptions,
  iterateInodes,
  type ScanOptions,
  scanInodeTables,
} from './inode-scan.js';
export {
  type InstallFileOptions,
  type InstallOptions,
  type InstallResult,
  installNormalImage,
  installNormalImageFile,
} from './install.js';
export {
  type CollectMetadataOptions,
  collectMetadata,
  collectMetadataExtents,
  type MetadataSet,
} from './metadata-extents.js';
export { type DeviceUse, deviceUse, isBusy, type MountUse } from './mount-state.js';
export { type MoveOptions, type MoveResult, moveFilesystem } from './move.js';
export {
  type NormalImage,
  type NormalImageFileOptions,
  type NormalImageOptions,
  type NormalImageResult,
  openNormalImage,
  writeNormalImage,
  writeNormalImageFile,
} from './normal-image.js';
export { type Qcow2ImageOptions, type Qcow2ImageResult, writeQcow2Image } from './qcow2-image.js';
export {
  type ByteSink,
  filesystemBytes,
  metadataSource,
  type RawImageFileOptions,
  type RawImageOptions,
  type RawImageResult,
  readableRanges,
  streamDevice,
  streamRawImage,
  writeRawImage,
  writeRawImageFile,
} from './raw-image.js';
export { CompareBeforeWriteDevice, DryRunDevice } from './raw-targets.js';
export { DirectoryScrambler, MetadataSourceDevice } from './scramble.js';
export {
  type DeviceToRawOptions,
  detectSourceFormat,
  type OpenedSource,
  type OpenSourceOptions,
  openSource,
  type SourceFormat,
  writeDeviceToRawFile,
  writeQcow2ToRawFile,
} from './source.js';
export { type ExtendedAttribute, readXattrs } from './xattr.js';
