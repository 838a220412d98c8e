import {
  type BlockDevice,
  type CopyResult,
  copy,
  createOutputFile,
  FileDevice,
  type LongRunningOptions,
  SliceDevice,
} from '@x/blockio';
import type { Qcow2Image } from '@x/qcow2';

/** The QCOW2 magic "QFI\xfb" (big-endian), as at byte 0 of every QCOW2 image. */
const QCOW_MAGIC = 0x514649fb;

export type SourceFormat = 'raw' | 'qcow2';

export interface OpenSourceOptions {
  /** The filesystem starts this many bytes into the (guest) device: e2image -o. */
  offset?: number | undefined;
  /** Treat the source as this format instead of looking at its magic. */
  format?: SourceFormat | undefined;
  /** Whether a QCOW2 source may open the backing/data files it names (default "deny"). */
  backingPolicy?: 'deny' | 'allow' | 'ignore' | undefined;
}

export interface OpenedSource {
  /** The bytes of the filesystem (or of the whole disk, at offset 0). */
  readonly device: BlockDevice;
  /** The whole source (guest view for QCOW2), without the offset. */
  readonly whole: BlockDevice;
  readonly format: SourceFormat;
  /** The QCOW2 image when the format is qcow2 (`whole` is that image). */
  readonly qcow2: Qcow2Image | undefined;
  close(): Promise<void>;
}

/** Whether the file starts with the QCOW2 magic. */
export async function detectSourceFormat(path: string): Promise<SourceFormat> {
  const file = await FileDevice.open(path);
  try {
    if (file.size < 4) return 'raw';
    return (await file.read(0, 4)).readUInt32BE(0) === QCOW_MAGIC ? 'qcow2' : 'raw';
  } finally {
    await file.close();
  }
}

/**
 * Opens what a filesystem is read from: a block device or raw image directly, a
 * QCOW2 image through @x/qcow2's reader (the "qcow2 io_manager" e2fsprogs never
 * got). The QCOW2 code is loaded only when a QCOW2 source appears.
 */
export async function openSource(
  path: string,
  options: OpenSourceOptions = {},
): Promise<OpenedSource> {
  const format = options.format ?? (await detectSourceFormat(path));
  let whole: BlockDevice;
  let qcow2: Qcow2Image | undefined;
  if (format === 'qcow2') {
    // The read side alone: all of @x/qcow2 costs more to load than many conversions.
    const { openQcow2 } = await import('@x/qcow2/read');
    qcow2 = await openQcow2(path, { backingPolicy: options.backingPolicy ?? 'deny' });
    whole = qcow2;
  } else {
    whole = await FileDevice.open(path);
  }
  const offset = options.offset ?? 0;
  try {
    const device = offset > 0 ? new SliceDevice(whole, offset) : whole;
    return { device, whole, format, qcow2, close: () => whole.close() };
  } catch (error) {
    await whole.close();
    throw error;
  }
}

export interface DeviceToRawOptions extends LongRunningOptions {
  /** Write the image this many bytes into the output (e2image -O). */
  destinationOffset?: number | undefined;
  /** Replace an existing output file. Default true (e2image overwrites). */
  overwrite?: boolean | undefined;
  /** fsync the output before it is renamed into place. Default true. */
  sync?: boolean | undefined;
}

/**
 * Every guest byte of `source` into a new sparse raw file (holes where the
 * source has none).
 */
export function writeDeviceToRawFile(
  source: BlockDevice,
  path: string,
  options: DeviceToRawOptions = {},
): Promise<CopyResult> {
  return writeRawFileWith(source.size, path, options, (target) =>
    copy(source, target, {
      signal: options.signal,
      onProgress: options.onProgress,
      phase: 'convert',
      targetIsZeroed: true,
    }),
  );
}

/**
 * e2image -r image.qcow2 out.raw: for any QCOW2 image rather than only those
 * e2image wrote, copying its allocated clusters directly (copyQcow2Clusters).
 */
export function writeQcow2ToRawFile(
  image: Qcow2Image,
  path: string,
  options: DeviceToRawOptions = {},
): Promise<CopyResult> {
  return writeRawFileWith(image.size, path, options, async (target) => {
    // Loaded here, as openQcow2 is above: plain -r of a device never needs @x/qcow2.
    const { copyQcow2Clusters } = await import('@x/qcow2/read');
    return copyQcow2Clusters(image, target, options);
  });
}

async function writeRawFileWith(
  size: number,
  path: string,
  options: DeviceToRawOptions,
  fill: (target: BlockDevice) => Promise<CopyResult>,
): Promise<CopyResult> {
  const offset = options.destinationOffset ?? 0;
  const output = await createOutputFile(path, {
    overwrite: options.overwrite ?? true,
    size: offset + size,
    sync: options.sync ?? true,
  });
  try {
    const target = offset > 0 ? new SliceDevice(output.device, offset) : output.device;
    const result = await fill(target);
    await output.commit();
    return result;
  } catch (error) {
    await output.abort();
    throw error;
  }
}
