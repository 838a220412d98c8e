import { stat } from 'node:fs/promises';
import {
  type BlockDevice,
  BlockIoError,
  type CopyResult,
  copy,
  FileDevice,
  type LongRunningOptions,
  optionRemedy,
} from '@x/blockio';
import { checkInputUnchanged } from './open-input.js';

export interface CopyToDeviceOptions extends LongRunningOptions {
  /** Writing a block device replaces what it holds: required, as for an existing file. */
  overwrite?: boolean | undefined;
  /** Flush the device's write cache at the end. Default true. */
  sync?: boolean | undefined;
  blockSize?: number | undefined;
  concurrency?: number | undefined;
}

/** Whether `path` names an existing block device (an output written in place). */
export async function isBlockDevicePath(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isBlockDevice() ?? false;
}

/**
 * `qemu-img convert -O raw … /dev/sdX`: every guest byte of `source` onto a block
 * device, zeros included (a device does not read as zeros where we do not write).
 * There is no temporary name to rename: an error or Ctrl-C leaves the device
 * partly written, as qemu-img does. Refused unless `overwrite`, when the device is
 * mounted or held by the kernel (TARGET_BUSY), or when it is smaller than the image.
 */
export async function copyToBlockDevice(
  source: BlockDevice,
  output: string,
  options: CopyToDeviceOptions = {},
): Promise<CopyResult> {
  if (!options.overwrite) {
    throw new BlockIoError(
      'EEXIST',
      `is a block device: converting onto it replaces what it holds (${optionRemedy('overwrite')} to write it)`,
      { path: output },
    );
  }
  const target = await FileDevice.open(output, { writable: true, exclusive: true });
  try {
    if (target.size < source.size) {
      throw new BlockIoError(
        'OUT_OF_RANGE',
        `the device holds ${target.size} bytes; the image needs ${source.size}`,
        { path: output },
      );
    }
    const result = await copy(source, target, {
      signal: options.signal,
      onProgress: options.onProgress,
      blockSize: options.blockSize ?? 1 << 20,
      concurrency: options.concurrency ?? 4,
      targetIsZeroed: false,
      phase: 'convert',
    });
    await checkInputUnchanged(source);
    if (options.sync ?? true) await target.flush();
    return result;
  } finally {
    await target.close();
  }
}
