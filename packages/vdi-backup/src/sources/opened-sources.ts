import type { BlockDevice } from '@x/blockio';
import type { SharedRanges } from '../create/equality-hints.js';
import type { HostFiles } from '../create/host-files.js';

/** The two sides of a backup, opened read-only. */
export interface OpenedSources {
  kind: 'images' | 'qcow2-snapshots' | 'sheepdog';
  from: BlockDevice;
  to: BlockDevice;
  /** Ranges both sides store in the same place (pass to createBackup). */
  sharedRanges?: SharedRanges | undefined;
  /** The files both sides keep their data in, and where (pass to createBackup). */
  hostFiles?: HostFiles | undefined;
  /**
   * How many bytes to read from each side at a time, when the sources know better than
   * the default (pass to createBackup as `readSize`).
   */
  readSize?: number | undefined;
  /** The object size the source dictates (a Sheepdog VDI's), if any. */
  objectSize?: number | undefined;
  close(): Promise<void>;
}
