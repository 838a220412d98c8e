export { allocateAligned } from './aligned-buffer.js';
export {
  BaseBlockDevice,
  type BaseDeviceOptions,
  type BlockDevice,
  type ByteRange,
  clampRange,
  type DeviceAlignment,
  deviceExtents,
  type Extent,
  type ExtentKind,
  singleExtent,
  zeroBuffer,
} from './block-device.js';
export {
  type ForEachConcurrentOptions,
  forEachConcurrent,
  Semaphore,
} from './concurrency.js';
export { type CopyOptions, type CopyResult, copy } from './copy.js';
export { crc32c, crc32cUpdate, maskCrc32c, unmaskCrc32c } from './crc32c.js';
export {
  abortedError,
  BlockIoError,
  type BlockIoErrorCode,
  type BlockIoErrorOptions,
  formatOffset,
  fromSystemError,
  optionRemedy,
  throwIfAborted,
} from './errors.js';
export { eventLoopYielder } from './event-loop-yielder.js';
export { ExtentSet } from './extent-set.js';
export { FileDevice, type OpenFileOptions } from './file-device.js';
export {
  clipExtents,
  type FileDataMap,
  mapFileData,
  parseFilefrag,
} from './file-extents.js';
export { forEachSettled, type SettledFailure } from './for-each-settled.js';
export { MemoryDevice, type MemoryDeviceOptions, ZeroDevice } from './memory-device.js';
export { moduleWorkerData, moduleWorkerUrl, startModuleWorker } from './module-worker.js';
export {
  createOutputFile,
  type OutputFile,
  type OutputFileOptions,
  withOutputFile,
} from './output-file.js';
export { removePartialOutputsSync, trackPartialOutput } from './partial-outputs.js';
export type {
  LongRunningOptions,
  ProgressEvent,
  ProgressListener,
  ProgressUnit,
} from './progress/progress-event.js';
export { ProgressTracker, type ProgressTrackerOptions } from './progress/progress-tracker.js';
export {
  createProgressRenderer,
  jsonLinesRenderer,
  type ProgressMode,
  type ProgressRenderer,
  ttyRenderer,
} from './progress/renderers.js';
export { type ReadOnlyDeviceOptions, readOnlyDevice } from './read-only-device.js';
export {
  alignDown,
  alignUp,
  assertOffset,
  checkedAdd,
  checkedMul,
  isPowerOfTwo,
  type SafeNumberContext,
  toSafeNumber,
} from './safe-number.js';
export { refuseSameFile } from './same-file.js';
export { formatSize, parseSize } from './size-parse.js';
export { SliceDevice, type SliceOptions } from './slice-device.js';
export { type DrainableStream, waitForDrain } from './stream-drain.js';
export {
  bytes,
  defineStruct,
  type FieldSpec,
  type FieldType,
  fixedString,
  i32be,
  i32le,
  reserved,
  type StructCodec,
  type StructValue,
  u8,
  u16be,
  u16le,
  u32be,
  u32le,
  u64be,
  u64le,
} from './struct.js';
export { WRITE_BEHIND_SLAB, WriteBehind, type WriteBehindOptions } from './write-behind.js';
export { type WriteFileAtomicOptions, writeFileAtomic } from './write-file-atomic.js';
export {
  type WriteFromStreamOptions,
  type WriteFromStreamResult,
  writeFromStream,
} from './write-from-stream.js';
export { isAllZero, isZeroRange } from './zero-detect.js';
