import { stat } from 'node:fs/promises';
import { BlockIoError, createOutputFile, throwIfAborted } from '@x/blockio';
import type { Filesystem } from './filesystem.js';
import {
  filesystemBytes,
  type RawImageOptions,
  type RawImageResult,
  writeRawImage,
} from './raw-image.js';

export interface Qcow2ImageOptions extends RawImageOptions {
  /** Replace an existing output file (atomically). Default true, like e2image. */
  overwrite?: boolean | undefined;
  /** fsync the image before it is renamed into place. Default true. */
  sync?: boolean | undefined;
}

export interface Qcow2ImageResult extends RawImageResult {
  /** Bytes of the QCOW2 file. */
  fileSize: number;
}

/**
 * e2image -Q: the metadata blocks in a QCOW2 file. As e2image does, the clusters
 * are filesystem blocks, the image is version 2 (compat 0.10) with 16-bit
 * refcounts, which e2image -r can read back, and all-zero blocks stay
 * unallocated. Like e2image, the file is built in one pass in ascending block
 * order (@x/qcow2's SequentialQcow2Image: data clusters, each L2 table after its
 * data, refcounts at the end), so the same filesystem gives the same file; unlike
 * e2image's, every cluster is referenced, so `qemu-img check` finds no leaks.
 */
export async function writeQcow2Image(
  fs: Filesystem,
  path: string,
  options: Qcow2ImageOptions = {},
): Promise<Qcow2ImageResult> {
  const existing = await stat(path).catch(() => undefined);
  if (existing && !existing.isFile()) {
    throw new BlockIoError('INVALID_ARGUMENT', 'a QCOW2 image must be written to a regular file', {
      path,
    });
  }
  // Only the sequential builder: loading all of @x/qcow2 costs more CPU than
  // writing a typical image.
  const { SequentialQcow2Image } = await import('@x/qcow2/sequential');
  const output = await createOutputFile(path, {
    overwrite: options.overwrite ?? true,
    sync: options.sync ?? true,
  });
  try {
    const image = SequentialQcow2Image.create(output.device, {
      virtualSize: filesystemBytes(fs),
      clusterSize: Math.max(512, fs.blockSize),
    });
    const result = await writeRawImage(fs, image, {
      ...options,
      targetIsZeroed: true,
      orderedWrites: true,
    });
    throwIfAborted(options.signal, path);
    const { fileSize } = await image.finish();
    await output.commit();
    return { ...result, fileSize };
  } catch (error) {
    await output.abort();
    throw error;
  }
}
