import { type BlockDevice, BlockIoError, FileDevice } from '@x/blockio';
import type { BackingPolicy } from '../backing/policy.js';
import { Qcow2Error } from '../errors.js';
import { QCOW_MAGIC } from '../format/constants.js';
import { openQcow2 } from '../image/open.js';
import { Qcow2Image } from '../image/qcow2-image.js';
import { SalvageLog } from '../read/salvage-log.js';

export type InputFormat = 'qcow2' | 'raw';

export interface OpenInputOptions {
  /** Force the input format instead of detecting it from the magic. */
  format?: InputFormat | undefined;
  /** Read this internal snapshot (qcow2 only). */
  snapshot?: string | undefined;
  backingPolicy?: BackingPolicy | undefined;
  l2CacheBytes?: number | undefined;
  /** How the input is read (see OpenQcow2Options.io). Default `async`. */
  io?: 'sync' | 'async' | undefined;
  /**
   * Read a damaged qcow2 input as QEMU does instead of refusing: tables and data
   * past the end of the file read as zeros, and every guest range read that way
   * is listed (OpenedInput.salvage, and the convert result's `salvaged`).
   */
  salvage?: boolean | undefined;
}

export interface OpenedInput {
  device: BlockDevice;
  format: InputFormat;
  /** With `salvage`, for a qcow2 input: what the reads zero-filled (filled as they go). */
  salvage?: SalvageLog | undefined;
}

/**
 * Opens a conversion source read-only: qcow2 (by magic, or when told) or raw.
 * Reads go through the thread pool by default, so that a copy into a file
 * (written synchronously) reads the next blocks while it writes this one.
 */
export async function openInput(
  path: string,
  options: OpenInputOptions = {},
): Promise<OpenedInput> {
  const format = options.format ?? (await detectFormat(path));
  if (format === 'raw') {
    if (options.snapshot !== undefined) {
      throw new Qcow2Error('UNSUPPORTED', 'a raw image has no snapshots', { path });
    }
    return { device: await FileDevice.open(path, { io: options.io ?? 'async' }), format };
  }
  const salvage = options.salvage ? new SalvageLog() : undefined;
  const device = await openQcow2(path, {
    snapshot: options.snapshot,
    backingPolicy: options.backingPolicy,
    l2CacheBytes: options.l2CacheBytes,
    io: options.io ?? 'async',
    salvage,
  });
  return { device, format, salvage };
}

/**
 * A conversion source the caller opened and keeps (it is not closed here):
 * qcow2 when it is a Qcow2Image, raw guest bytes otherwise. `format` and
 * `snapshot` choose how a path is opened, so with a device they are refused
 * rather than ignored (open the snapshot view yourself).
 */
export function deviceInput(device: BlockDevice, options: OpenInputOptions = {}): OpenedInput {
  for (const option of ['format', 'snapshot'] as const) {
    if (options[option] !== undefined) {
      throw new BlockIoError(
        'INVALID_ARGUMENT',
        `the ${option} option applies to an input path, not to an opened device`,
        { path: device.name, structure: 'convert options' },
      );
    }
  }
  return { device, format: device instanceof Qcow2Image ? 'qcow2' : 'raw' };
}

export async function detectFormat(path: string): Promise<InputFormat> {
  const file = await FileDevice.open(path);
  try {
    if (file.size < 4) return 'raw';
    return (await file.read(0, 4)).readUInt32BE(0) === QCOW_MAGIC ? 'qcow2' : 'raw';
  } finally {
    await file.close();
  }
}

/** Throws CHANGED if a qcow2 input was modified while we read it. */
export async function checkInputUnchanged(device: BlockDevice): Promise<void> {
  if (device instanceof Qcow2Image) await device.checkUnchanged();
}
