/**
 * `@x/qcow2/read`: the read side alone (open, read, map, info, convert to raw),
 * without the writer and its dependencies, for tools that must start fast. The
 * same names are exported from `@x/qcow2`.
 */
export type { BackingPolicy } from './backing/policy.js';
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
export type { CompressionType } from './compression/decompress.js';
export type { ConvertResult, ConvertToRawResult } from './convert/convert-result.js';
export {
  type ConvertToRawOptions,
  convertToRaw,
  copyToRawFile,
} from './convert/convert-to-raw.js';
export { copyQcow2Clusters } from './convert/copy-clusters.js';
export {
  detectFormat,
  type InputFormat,
  type OpenedInput,
  type OpenInputOptions,
  openInput,
} from './convert/open-input.js';
export { Qcow2Error, type Qcow2ErrorCode } from './errors.js';
export { type OpenQcow2Options, openQcow2 } from './image/open.js';
export { Qcow2Image } from './image/qcow2-image.js';
export type {
  CreateSnapshotOptions,
  Preallocation,
  PrecompressedCluster,
  ResizeOptions,
  WriteZeroesOptions,
} from './image/write-path.js';
export type { AllocationFigures } from './info/allocation.js';
export {
  backingChainInfo,
  type ImageInfo,
  type ImageInfoOptions,
  type InfoProblem,
  imageInfo,
} from './info/image-info.js';
export { type MapEntry, type MapOptions, mapEntries, mapImage } from './map/map-image.js';
export { mapRawEntries } from './map/map-raw.js';
export type { SnapshotEntry } from './snapshot/snapshot-entry.js';
