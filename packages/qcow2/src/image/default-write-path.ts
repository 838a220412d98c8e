import type { Qcow2WritePathFactory } from './write-path.js';

/**
 * The write path `openQcow2(path, { writable: true })` uses when the caller
 * passes none. Owned by the write helper (src/write/): point this at the real
 * factory once it exists. Until then writable opens fail with UNSUPPORTED.
 */
export const defaultWritePathFactory: Qcow2WritePathFactory | undefined = undefined;
