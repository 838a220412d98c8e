import { Qcow2Writer } from '../write/writer.js';
import type { Qcow2WritePathFactory } from './write-path.js';

/** The write path `openQcow2(path, { writable: true })` uses when the caller passes none. */
export const defaultWritePathFactory: Qcow2WritePathFactory | undefined = (image) =>
  Qcow2Writer.open(image);
