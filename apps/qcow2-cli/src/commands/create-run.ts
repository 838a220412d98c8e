import { stat } from 'node:fs/promises';
import { type CommandContext, sizeOption, UsageError } from '@x/blockio/cli';
import { createQcow2 } from '@x/qcow2/convert';
import { openQcow2 } from '@x/qcow2/read';
import type { CreateCliOptions } from './create.js';
import { describeImageOptions, parseImageOptions } from './image-options.js';

export async function createImage(
  image: string,
  sizeText: string | undefined,
  options: CreateCliOptions,
  context: CommandContext,
): Promise<void> {
  const fail = (message: string) => new UsageError(message);
  const parseSize = (text: string, what: string) => sizeOption(what)(text);
  const { create, given } = parseImageOptions(options.options, parseSize, fail);
  if (options.backingFile !== undefined) create.backingFile = options.backingFile;
  if (options.backingFormat !== undefined) {
    create.backingFormat = options.backingFormat as 'qcow2' | 'raw';
  }
  if (sizeText !== undefined) create.size = parseSize(sizeText, 'size');
  if (create.backingFile !== undefined && create.backingFormat === undefined) {
    // qemu-img 6.1 and later refuse too: probing the backing format is unsafe.
    throw new UsageError('a backing file needs its format: -F qcow2 or -F raw');
  }
  if (create.backingFile === undefined && create.size === undefined) {
    throw new UsageError('give the image size (e.g. 10G), or a backing file to take it from');
  }
  create.overwrite = options.force ?? false;
  await createQcow2(image, create);

  const created = await openQcow2(image, { backingPolicy: 'ignore' });
  const virtualSize = created.size;
  const clusterSize = created.geometry.clusterSize;
  const version = created.metadata.header.version;
  await created.close();
  const fileSize = (await stat(image)).size;
  if (context.json) {
    context.printJson({
      filename: image,
      format: 'qcow2',
      'virtual-size': virtualSize,
      'cluster-size': clusterSize,
      compat: version >= 3 ? '1.1' : '0.10',
      'refcount-bits': create.refcountBits ?? 16,
      'compression-type': create.compressionType ?? 'zlib',
      'extended-l2': create.extendedL2 ?? false,
      'lazy-refcounts': create.lazyRefcounts ?? false,
      preallocation: create.preallocation ?? 'off',
      ...(create.backingFile === undefined
        ? {}
        : {
            'backing-filename': create.backingFile,
            'backing-filename-format': create.backingFormat,
          }),
      ...(create.dataFile === undefined ? {} : { 'data-file': create.dataFile }),
      'actual-size': fileSize,
    });
    return;
  }
  if (!options.quiet) {
    context.print(
      `Formatting '${image}', ${describeImageOptions(given, create, create.size ?? virtualSize)}`,
    );
  }
}
