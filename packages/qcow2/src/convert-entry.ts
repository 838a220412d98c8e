/**
 * `@x/qcow2/convert`: conversion into a new qcow2 image (the writer, without
 * check, repair or dump), for tools that must start fast. The same names are
 * exported from `@x/qcow2`.
 */
export {
  type ConvertToQcow2Options,
  type ConvertToQcow2Result,
  convertToQcow2,
} from './convert/convert-to-qcow2.js';
