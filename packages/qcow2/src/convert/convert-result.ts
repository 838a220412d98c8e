import type { InputFormat } from './open-input.js';

/**
 * What every conversion reports, under the same names whatever the output
 * format; convertToRaw and convertToQcow2 add what only their output has.
 */
export interface ConvertResult {
  /** The input's format, as given or detected. */
  inputFormat: InputFormat;
  /** Guest size copied: the input's virtual size (a qcow2 output rounds it up to 512). */
  virtualSize: number;
  /** Guest bytes read from the input. */
  bytesRead: number;
  /** Guest bytes written to the output as data (zeros and holes not counted). */
  bytesWritten: number;
}

/** convertToRaw's result. */
export interface ConvertToRawResult extends ConvertResult {
  /** Guest bytes left as holes in the output because they read as zeros. */
  bytesZero: number;
}

/** convertToQcow2's result. */
export interface ConvertToQcow2Result extends ConvertResult {
  /** Size of the new qcow2 file. */
  fileSize: number;
}
