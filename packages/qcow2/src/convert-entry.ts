/**
 * `@x/qcow2/convert`: conversion into a new qcow2 image (the writer, without
 * check, repair or dump), for tools that must start fast. The same names are
 * exported from `@x/qcow2`.
 */
export type { ConvertResult, ConvertToQcow2Result } from './convert/convert-result.js';
export {
  type ConvertImageOptions,
  type ConvertToQcow2Options,
  convertToQcow2,
} from './convert/convert-to-qcow2.js';
export { type CreateQcow2Options, createQcow2 } from './create/create-qcow2.js';
export {
  type ResizeQcow2Options,
  type ResizeQcow2Result,
  resizeQcow2,
} from './resize/resize-qcow2.js';
