import { stat } from 'node:fs/promises';
import { BlockIoError, formatOffset, optionRemedy } from '@x/blockio';
import type { BackingPolicy } from '../backing/policy.js';
import { Qcow2Error } from '../errors.js';
import { openQcow2 } from '../image/open.js';
import type { Qcow2Image } from '../image/qcow2-image.js';
import type { ResizeOptions } from '../image/write-path.js';

export interface ResizeQcow2Options extends ResizeOptions {
  /**
   * May the image make us open its backing file (read-only)? Default `deny`. Growing
   * an image whose backing file is larger zeroes the new area, as qemu-img does, and
   * needs the backing file's size; `ignore` skips that (its data then shows through).
   */
  backingPolicy?: BackingPolicy | undefined;
}

export interface ResizeQcow2Result {
  oldSize: number;
  newSize: number;
  /** Size of the qcow2 file afterwards. */
  fileSize: number;
}

/** Bytes read at a time while looking for data past the new end. */
const SCAN_CHUNK = 1 << 20;

/**
 * `qemu-img resize` for a qcow2 file: grows the virtual disk (optionally with
 * metadata preallocation) or shrinks it, leaving the file byte for byte as
 * qemu-img 7.2 does. Shrinking drops whatever the image holds past the new
 * end, so without `shrink: true` it is done only when nothing would be lost —
 * the guest reads no non-zero byte there (backing files included) — and refused
 * with WOULD_LOSE_DATA otherwise. `size` may be a function of the current size
 * (`+10G`).
 */
export async function resizeQcow2(
  path: string,
  size: number | ((oldSize: number) => number),
  options: ResizeQcow2Options = {},
): Promise<ResizeQcow2Result> {
  const image = await openQcow2(path, {
    writable: true,
    backingPolicy: options.backingPolicy ?? 'deny',
  });
  let oldSize: number;
  let newSize: number;
  try {
    oldSize = image.size;
    newSize = typeof size === 'function' ? size(oldSize) : size;
    if (!Number.isSafeInteger(newSize) || newSize < 0 || newSize % 512 !== 0) {
      throw new BlockIoError(
        'INVALID_ARGUMENT',
        `the new size must be a multiple of 512, not ${newSize}`,
        { path, structure: 'resize' },
      );
    }
    let shrink = options.shrink ?? false;
    if (newSize < oldSize && !shrink) {
      const lost = await firstDataByte(image, newSize, oldSize);
      if (lost !== undefined) {
        throw new Qcow2Error(
          'WOULD_LOSE_DATA',
          `the image holds data at guest offset ${formatOffset(lost)}, past the new end ${formatOffset(newSize)}: shrinking would drop it (${optionRemedy('shrink')} to do it anyway)`,
          { path, offset: lost, structure: 'resize' },
        );
      }
      shrink = true;
    }
    await image.resize(newSize, { preallocation: options.preallocation, shrink });
  } finally {
    await image.close();
  }
  return { oldSize, newSize, fileSize: (await stat(path)).size };
}

/** The first guest offset in [from, to) where the guest reads a non-zero byte. */
async function firstDataByte(
  image: Qcow2Image,
  from: number,
  to: number,
): Promise<number | undefined> {
  for await (const extent of image.extents({ offset: from, length: to - from })) {
    if (extent.kind !== 'data') continue;
    const end = extent.offset + extent.length;
    for (let at = extent.offset; at < end; at += SCAN_CHUNK) {
      const bytes = await image.read(at, Math.min(SCAN_CHUNK, end - at));
      const index = bytes.findIndex((byte) => byte !== 0);
      if (index >= 0) return at + index;
    }
  }
  return undefined;
}
