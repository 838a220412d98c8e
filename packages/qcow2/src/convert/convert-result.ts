import type { SalvagedRange, SalvageLog } from '../read/salvage-log.js';
import type { InputFormat } from './open-input.js';

/** What a salvaging conversion zero-filled (see ConvertToRawOptions.salvage). */
export interface SalvageReport {
  /** Guest ranges that are not the image's data, in guest order (at most 10,000). */
  ranges: SalvagedRange[];
  /** Guest bytes zero-filled (or read as unallocated), in total. */
  totalBytes: number;
  /** More ranges were found than `ranges` lists. */
  truncated: boolean;
}

export function salvageReport(log: SalvageLog | undefined): SalvageReport | undefined {
  if (log === undefined) return undefined;
  return { ranges: log.ranges(), totalBytes: log.totalBytes, truncated: log.truncated };
}

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
  /** With `salvage`: what was zero-filled instead of refused (empty `ranges` when nothing was). */
  salvaged?: SalvageReport | undefined;
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
