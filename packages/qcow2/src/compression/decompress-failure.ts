import { Qcow2Error } from '../errors.js';
import type { CompressionType } from './cluster-decoder.js';

export interface DecompressWhere {
  path: string;
  /** Host offset of the compressed data. */
  offset: number;
  /** Guest offset of the cluster, for the message. */
  guestOffset: number;
}

/** The error for a compressed cluster that does not decode to exactly one cluster. */
export function decompressFailure(
  where: DecompressWhere,
  type: CompressionType,
  detail: string,
): Qcow2Error {
  return new Qcow2Error(
    'DECOMPRESS_FAILED',
    `compressed cluster for guest offset 0x${where.guestOffset.toString(16)} does not ${type === 'zlib' ? 'inflate' : 'decompress (zstd)'} to one cluster: ${detail}`,
    { path: where.path, offset: where.offset, structure: 'compressed cluster' },
  );
}
