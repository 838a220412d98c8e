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
export type { HostFiles, LocatedSpan } from './create/host-files.js';
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
  type MergeBackupsOptions,
  type MergeBackupsResult,
  mergeBackups,
} from './merge/merge-backups.js';
export {
  checkObjectSize,
  DEFAULT_OBJECT_SIZE,
  MAX_BUFFERED_OBJECT_SIZE,
  MAX_OBJECT_SIZE,
} from './object-size.js';
export { type ApplyResult, applyBackup } from './restore/apply-backup.js';
export type { Qcow2RestoreTarget } from './restore/qcow2-target.js';
export type { RawRestoreTarget } from './restore/raw-target.js';
export {
  type BackupSource,
  type RestoreOptions,
  type RestoreResult,
  type RestoreTarget,
  restoreBackup,
  targetKind,
} from './restore/restore-backup.js';
export type { SheepdogRestoreTarget } from './restore/sheepdog-target-types.js';
export { openBackupSources, type SourceSpec } from './sources/open-sources.js';
export type { OpenedSources } from './sources/opened-sources.js';
export { qcow2HostFiles } from './sources/qcow2-host-files.js';
export { qcow2SharedRanges } from './sources/qcow2-shared.js';
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
