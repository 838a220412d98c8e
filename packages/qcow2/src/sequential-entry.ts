/**
 * `@x/qcow2/sequential`: a one-pass QCOW2 builder for data written in ascending
 * guest order (e2image -Q), without the general writer, for tools that must
 * start fast. The same names are exported from `@x/qcow2`.
 */
export { Qcow2Error, type Qcow2ErrorCode } from './errors.js';
export {
  type SequentialImageOptions,
  type SequentialImageResult,
  SequentialQcow2Image,
} from './sequential/sequential-image.js';
