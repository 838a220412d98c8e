import type { ConvertImageOptions } from '@x/qcow2/convert';
import { parseImageOptions } from './image-options.js';

/**
 * What `convert -O qcow2 -o …` takes: creation options, but not a size (the
 * input's) or an external data file. backing_file/backing_fmt are qemu-img's
 * -B/-F, which win over them when both are given.
 */
const NOT_FOR_CONVERT = ['size', 'data_file', 'data_file_raw'];

export function convertImageOptions(
  texts: readonly string[],
  sizeOption: (what: string) => (text: string) => number,
  UsageError: new (message: string) => Error,
): { create: ConvertImageOptions; clusterSize: number | undefined } {
  const fail = (message: string) => new UsageError(message);
  const { create, given } = parseImageOptions(texts, (text, what) => sizeOption(what)(text), fail);
  for (const name of NOT_FOR_CONVERT) {
    if (name in given) {
      throw fail(
        `-o ${name} is not supported by convert (the output gets the input's size and no external data file)`,
      );
    }
  }
  return {
    create: {
      version: create.version,
      refcountBits: create.refcountBits,
      compressionType: create.compressionType,
      extendedL2: create.extendedL2,
      preallocation: create.preallocation,
      lazyRefcounts: create.lazyRefcounts,
      backingFile: create.backingFile,
      backingFormat: create.backingFormat,
    },
    clusterSize: create.clusterSize,
  };
}
