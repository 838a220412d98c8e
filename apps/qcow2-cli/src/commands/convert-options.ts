import type { ConvertImageOptions } from '@x/qcow2/convert';
import { parseImageOptions } from './image-options.js';

/** What `convert -O qcow2 -o …` takes: creation options, but not those that name files or a size. */
const NOT_FOR_CONVERT = ['size', 'backing_file', 'backing_fmt', 'data_file', 'data_file_raw'];

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
        `-o ${name} is not supported by convert (the output gets the input's size and no backing or data file)`,
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
    },
    clusterSize: create.clusterSize,
  };
}
