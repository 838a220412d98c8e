import type { LongRunningOptions } from '@x/blockio';
import type { BackingPolicy } from '../backing/policy.js';
import { checkInputUnchanged, type InputFormat, openInput } from '../convert/open-input.js';
import { type CompareResult, compareDevices } from './compare-devices.js';

/** How one side of a comparison is opened. */
export interface CompareSide {
  /** Default: detected from the magic. */
  format?: InputFormat | undefined;
  /** Compare this internal snapshot of a qcow2 image instead of its active state. */
  snapshot?: string | undefined;
}

export interface CompareImagesOptions extends LongRunningOptions {
  a?: CompareSide | undefined;
  b?: CompareSide | undefined;
  /** See CompareOptions.strict. */
  strict?: boolean | undefined;
  /** Default `deny` (see BackingPolicy); qemu-img follows backing files (`allow`). */
  backingPolicy?: BackingPolicy | undefined;
}

export interface CompareImagesResult extends CompareResult {
  formats: [InputFormat, InputFormat];
  sizes: [number, number];
}

/**
 * `qemu-img compare A B`: opens both paths read-only (raw or qcow2, an
 * internal snapshot of either, backing chains followed as the policy allows)
 * and compares their guest bytes (see compareDevices).
 */
export async function compareImages(
  pathA: string,
  pathB: string,
  options: CompareImagesOptions = {},
): Promise<CompareImagesResult> {
  const open = (path: string, side: CompareSide | undefined) =>
    openInput(path, {
      format: side?.format,
      snapshot: side?.snapshot,
      backingPolicy: options.backingPolicy,
    });
  const a = await open(pathA, options.a);
  try {
    const b = await open(pathB, options.b);
    try {
      const result = await compareDevices(a.device, b.device, options);
      await checkInputUnchanged(a.device);
      await checkInputUnchanged(b.device);
      return { ...result, formats: [a.format, b.format], sizes: [a.device.size, b.device.size] };
    } finally {
      await b.device.close();
    }
  } finally {
    await a.device.close();
  }
}
