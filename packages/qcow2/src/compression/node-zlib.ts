import type * as Zlib from 'node:zlib';
import type { DecodeTools } from './cluster-decoder.js';

/**
 * node:zlib, loaded on first use rather than by an import: opening an image (every
 * CLI that reads QCOW2) then does not load zlib, nor the worker machinery of the
 * inflate pool, unless a compressed cluster is actually read.
 */
export function nodeZlib(): typeof Zlib {
  return process.getBuiltinModule('node:zlib');
}

/** node:zlib has zstd from Node 22.15 / 23.8; older versions use libzstd in WebAssembly. */
export function nativeZstd(): DecodeTools['zstdDecompressSync'] {
  return (nodeZlib() as unknown as { zstdDecompressSync?: DecodeTools['zstdDecompressSync'] })
    .zstdDecompressSync;
}
