export {
  type CreateBackupOptions,
  type CreateBackupResult,
  createBackup,
} from './create/create-backup.js';
export {
  type DiffOptions,
  type DiffRecord,
  type DiffStats,
  diffObjects,
} from './create/diff-objects.js';
export type { SharedRanges } from './create/equality-hints.js';
export { VdiBackupError, type VdiBackupErrorCode } from './errors.js';
export * from './format/stream-format.js';
export {
  type BackupInspection,
  type InspectOptions,
  inspectBackup,
  type VerifyOptions,
  verifyBackup,
} from './inspect.js';
export {
  checkObjectSize,
  DEFAULT_OBJECT_SIZE,
  MAX_BUFFERED_OBJECT_SIZE,
  MAX_OBJECT_SIZE,
} from './object-size.js';
export { type ApplyResult, applyBackup } from './restore/apply-backup.js';
export type { RawRestoreTarget } from './restore/raw-target.js';
export {
  type BackupSource,
  type RestoreOptions,
  type RestoreResult,
  type RestoreTarget,
  restoreBackup,
} from './restore/restore-backup.js';
export {
  BackupReader,
  type BackupRecord,
  type BackupSummary,
  type ReadBackupOptions,
} from './stream/backup-reader.js';
export {
  type BackupOutput,
  BackupWriter,
  type BackupWriterOptions,
} from './stream/backup-writer.js';
export { type SpooledStream, spoolToTempFile } from './stream/spool.js';
