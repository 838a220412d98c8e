/**
 * Diagnosis and repair: check, dump, repair (with the undo log), undo and hand
 * edits, re-exported from the package index.
 */
export { type AnalyseOptions, analyseImage, type ImageAnalysis } from './check/analyse.js';
export {
  type CheckImageOptions,
  type CheckMode,
  checkDevice,
  checkImage,
} from './check/check-image.js';
export type { L2EntryDescription } from './check/describe-entry.js';
export { formatCheckReport, formatFinding } from './check/format-report.js';
export { type HeaderFacts, readHeaderFacts } from './check/header-facts.js';
export { type ImageFacts, inspectImage } from './check/inspect.js';
export { RefcountTally } from './check/refcount-tally.js';
export {
  CHECK_EXIT_CLEAN,
  CHECK_EXIT_COPIED,
  CHECK_EXIT_CORRUPT,
  CHECK_EXIT_COULD_NOT_RUN,
  CHECK_EXIT_FLAGGED,
  CHECK_EXIT_LEAKS,
  CHECK_EXIT_REFCOUNT,
  CHECK_EXIT_SNAPSHOT_TABLE,
  type CheckFinding,
  type CheckReport,
  type CheckVerdict,
  FINDING_EXIT_CODES,
  type FindingKind,
  type FindingReference,
  type PreallocationMode,
} from './check/report.js';
export type { L2EntryEvent, WalkOwner } from './check/walk-tables.js';
export {
  DUMP_SECTIONS,
  type DumpOptions,
  type DumpRecord,
  type DumpSection,
  dumpImage,
} from './dump/dump-image.js';
export { type PokeOptions, type PokeResult, pokeImage } from './edit/poke.js';
export {
  type HeaderFlag,
  type SetFeatureOptions,
  type SetFeatureResult,
  setFeature,
} from './edit/set-feature.js';
export type { PlannedWrite } from './repair/metadata-writer.js';
export type { RefcountStructurePlan } from './repair/rebuild-structure.js';
export {
  type RepairOptions,
  type RepairResult,
  rebuildRefcounts,
  repairImage,
} from './repair/repair-image.js';
export {
  readUndoLog,
  UNDO_LOG_SUFFIX,
  type UndoRecord,
  type UndoSession,
  undoLogPath,
} from './undo/undo-log.js';
export { type UndoOptions, type UndoResult, undoRepair } from './undo/undo-repair.js';
