import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Qcow2Error } from '../errors.js';

/*
 * libzstd compiled to WebAssembly (@foxglove/wasm-zstd, pinned): the zstd decoder
 * where node:zlib has none (Node < 22.15), and the compressor everywhere. Chosen on
 * numbers (2048 real qemu-img 7.2 zstd clusters, 128 MiB, one core, CPU time):
 * libzstd 1.5.4 (the zstd tool) 0.13 s, this build 0.32-0.36 s, zstddec 0.39 s,
 * @bokuweb/zstd-wasm 0.37-0.48 s, fzstd (pure JS) 1.0 s. Its level-3 frames are byte
 * for byte those of qemu-img 7.2 on Debian 12 (libzstd 1.5.4) for all of them;
 * @bokuweb/zstd-wasm's (a newer libzstd) differ for most.
 *
 * We drive its Emscripten module directly (not the package's wrapper, which returns
 * a fresh 64 KiB Buffer per cluster: garbage that costs a worker tens of MiB of RSS):
 * one input and one output region on the WebAssembly heap, reused for every call.
 */

/** The exports of the Emscripten module we use (C functions of the package's wrapper). */
export interface ZstdModule {
  HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(pointer: number): void;
  _compressBound(size: number): number;
  /** ZSTD_compress; -1 on error. */
  _compress(dst: number, capacity: number, src: number, size: number, level: number): number;
  /** ZSTD_decompress; -1 on error (a bad frame, or more output than `capacity`). */
  _decompress(dst: number, capacity: number, src: number, size: number): number;
}

export interface WasmZstd {
  /**
   * Decompresses one frame into `target`, at most `target.byteLength` bytes
   * (frames with or without a declared size). Bytes produced, or -1 when
   * libzstd refuses the frame (corrupt, or more output than `target` holds).
   */
  decompressInto(input: Uint8Array, target: Uint8Array): number;
  /** One frame (ZSTD_compress at `level`, content size declared), or undefined on error. */
  compress(input: Uint8Array, level: number): Uint8Array | undefined;
}

/**
 * A WasmZstd over an instantiated module. Self-contained (no module-level names):
 * the inflate and deflate workers run its source text.
 */
export function bindZstdModule(module: ZstdModule): WasmZstd {
  const regions = [
    { pointer: 0, size: 0 },
    { pointer: 0, size: 0 },
  ];
  // The heap may grow (and HEAPU8 be replaced) inside any call: read it after.
  const region = (index: number, size: number): number => {
    const current = regions[index] as { pointer: number; size: number };
    if (current.size < size) {
      if (current.pointer !== 0) module._free(current.pointer);
      current.pointer = module._malloc(size);
      current.size = current.pointer === 0 ? 0 : size;
      if (current.pointer === 0) throw new Error(`libzstd could not allocate ${size} bytes`);
    }
    return current.pointer;
  };
  return {
    decompressInto(input, target) {
      const source = region(0, input.byteLength);
      const destination = region(1, target.byteLength);
      module.HEAPU8.set(input, source);
      const produced = module._decompress(destination, target.byteLength, source, input.byteLength);
      if (produced < 0) return -1;
      target.set(module.HEAPU8.subarray(destination, destination + produced));
      return produced;
    },
    compress(input, level) {
      const capacity = module._compressBound(input.byteLength);
      const source = region(0, input.byteLength);
      const destination = region(1, capacity);
      module.HEAPU8.set(input, source);
      const length = module._compress(destination, capacity, source, input.byteLength, level);
      if (length < 0) return undefined;
      return module.HEAPU8.slice(destination, destination + length);
    },
  };
}

/**
 * The package's Emscripten module (a factory resolving to the module), resolved
 * from here: bundled apps keep the package external and list it.
 */
export function wasmZstdModulePath(): string {
  const entry = createRequire(import.meta.url).resolve('@foxglove/wasm-zstd');
  return join(dirname(entry), 'wasm-zstd.js');
}

let loading: Promise<WasmZstd> | undefined;

/**
 * The codec on this thread, compiled on first use (not at start-up).
 * UNSUPPORTED when this Node cannot run WebAssembly (`--jitless`).
 */
export function loadWasmZstd(): Promise<WasmZstd> {
  loading ??= (async () => {
    try {
      const factory = createRequire(import.meta.url)(wasmZstdModulePath()) as (
        options?: object,
      ) => Promise<ZstdModule>;
      return bindZstdModule(await factory());
    } catch (error) {
      loading = undefined;
      throw new Qcow2Error(
        'UNSUPPORTED',
        `zstd needs WebAssembly on this Node (${process.version}; node:zlib has zstd from 22.15): ${(error as Error).message}`,
        { structure: 'compressed cluster', cause: error },
      );
    }
  })();
  return loading;
}
