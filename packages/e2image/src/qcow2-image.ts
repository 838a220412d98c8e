import { link, rename, rm, stat, unlink } from 'node:fs/promises';
import { BlockIoError, fromSystemError, throwIfAborted } from '@x/blockio';
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
 * e2image -Q: the metadata blocks in a QCOW2 file, written through @x/qcow2's
 * writer (so `qemu-img check` finds no leaks, unlike e2image's own writer).
 * As e2image does, the clusters are filesystem blocks and the image is version 2
 * (compat 0.10) with 16-bit refcounts, which e2image -r can read back; all-zero
 * blocks stay unallocated. Blocks are written in ascending order, so the same
 * filesystem gives the same file.
 */
export async function writeQcow2Image(
  fs: Filesystem,
  path: string,
  options: Qcow2ImageOptions = {},
): Promise<Qcow2ImageResult> {
  const { createQcow2, openQcow2 } = await import('@x/qcow2');
  const overwrite = options.overwrite ?? true;
  const existing = await stat(path).catch(() => undefined);
  if (existing && !existing.isFile()) {
    throw new BlockIoError('INVALID_ARGUMENT', 'a QCOW2 image must be written to a regular file', {
      path,
    });
  }
  if (!overwrite && existing) {
    throw new BlockIoError('EEXIST', 'output file already exists', { path });
  }
  // createQcow2 itself writes <name>.partial and renames; we build the image
  // under our own .partial name and rename it once the metadata is in.
  const partial = `${path}.partial`;
  if (await exists(partial)) {
    if (!overwrite) {
      throw new BlockIoError(
        'EEXIST',
        `a partial output from an earlier run exists at ${partial}`,
        { path },
      );
    }
    await rm(partial, { force: true });
  }
  await createQcow2(partial, {
    size: filesystemBytes(fs),
    version: 2,
    clusterSize: Math.max(512, fs.blockSize),
    refcountBits: 16,
  });
  let committed = false;
  try {
    const image = await openQcow2(partial, { writable: true });
    let result: RawImageResult;
    try {
      result = await writeRawImage(fs, image, {
        ...options,
        targetIsZeroed: true,
        orderedWrites: true,
      });
      throwIfAborted(options.signal, path);
      if (options.sync ?? true) await image.flush();
    } finally {
      await image.close();
    }
    const fileSize = (await stat(partial)).size;
    try {
      if (overwrite) await rename(partial, path);
      else {
        await link(partial, path);
        await unlink(partial);
      }
    } catch (error) {
      throw fromSystemError(error, 'move the finished image into place', { path });
    }
    committed = true;
    return { ...result, fileSize };
  } finally {
    if (!committed) await rm(partial, { force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
