import { stat } from 'node:fs/promises';
import { FileDevice, type LongRunningOptions } from '@x/blockio';
import { analyseImage, type ImageAnalysis } from '../check/analyse.js';
import { buildReport } from '../check/check-image.js';
import { readHeaderFacts } from '../check/header-facts.js';
import { RefcountTally } from '../check/refcount-tally.js';
import { type CheckReport, FindingCollector, type FindingKind } from '../check/report.js';
import { StoredRefcounts } from '../check/stored-refcounts.js';
import { walkOwners } from '../check/table-iterator.js';
import { requireQcow2Magic } from '../edit/require-qcow2.js';
import { QCOW2_INCOMPAT_CORRUPT, QCOW2_INCOMPAT_DIRTY } from '../format/constants.js';
import { maxRefcount } from '../format/table-entries.js';
import { UndoLogWriter, undoLogPath } from '../undo/undo-log.js';
import { fixCopiedFlags, type RefcountLookup, storedLookup } from './fix-copied.js';
import { fixRefcounts } from './fix-refcounts.js';
import { updateIncompatibleFeatures } from './header-flags.js';
import { MetadataWriter, type PlannedWrite } from './metadata-writer.js';
import { type RefcountStructurePlan, writeRefcountStructure } from './rebuild-structure.js';

export interface RepairOptions extends LongRunningOptions {
  /** Free leaked clusters. */
  leaks?: boolean | undefined;
  /** Raise refcounts that are below the references. */
  refcounts?: boolean | undefined;
  /** Fix COPIED flags of the active tables. */
  copied?: boolean | undefined;
  /** Build a new refcount table and blocks from the L1/L2 and snapshot tables. */
  rebuildRefcounts?: boolean | undefined;
  /** Report what would be written; change nothing. */
  dryRun?: boolean | undefined;
  /** Undo log path (default `<image>.qcow2-undo`); false for none. */
  undoLog?: string | false | undefined;
}

export interface RepairResult {
  image: string;
  dryRun: boolean;
  before: CheckReport;
  /** The check after repairing (not in a dry run). */
  after: CheckReport | undefined;
  leaksFixed: number;
  refcountsFixed: number;
  copiedFixed: number;
  rebuilt: RefcountStructurePlan | undefined;
  flagsCleared: Array<'corrupt' | 'dirty'>;
  /** What was deliberately not repaired, and why. */
  refused: string[];
  writes: number;
  bytesWritten: number;
  /** The writes (first 1000), with what each fixes. */
  planned: PlannedWrite[];
  /** The undo log written, if anything was written. */
  undoLog: string | undefined;
  /** `check`'s exit code for the image afterwards (before, in a dry run). */
  exitCode: number;
}

const TABLE_DAMAGE: FindingKind[] = ['l1-entry', 'l1-table', 'l2-entry', 'read-error'];
const CORRUPTION_LEFT: FindingKind[] = [
  'refcount-error',
  'refcount-overflow',
  'refcount-table-entry',
  'refcount-table',
  'snapshot-table',
  'l1-entry',
  'l1-table',
  'l2-entry',
  'extended-l2-bitmap',
  'v2-zero-flag',
  'overlap',
  'reused-cluster',
  'header',
  'bitmaps',
  'read-error',
  'copied',
];

/**
 * Repairs refcounts and COPIED flags (what `qemu-img check -r all` repairs),
 * rebuilding the whole refcount structure when it is destroyed. With no
 * selection it does all of it. Every byte it overwrites goes to the undo log
 * first. It is more careful than qemu-img where qemu-img makes things worse:
 * it never raises the refcount of a cluster where guest data aliases
 * metadata, never frees "leaks" while a snapshot or table it cannot read may
 * own them, and never writes into a misplaced table.
 */
export async function repairImage(
  path: string,
  options: RepairOptions = {},
): Promise<RepairResult> {
  const dryRun = options.dryRun === true;
  const { wantLeaks, wantErrors, wantCopied, wantRebuild } = selection(options);
  const logPath = options.undoLog === false ? undefined : (options.undoLog ?? undoLogPath(path));

  const file = await FileDevice.open(path, { writable: !dryRun });
  try {
    await requireQcow2Magic(file);
    const started = performance.now();
    const analysis = await analyseImage(file, {
      signal: options.signal,
      onProgress: options.onProgress,
    });
    const before = buildReport(analysis, await allocatedBytes(path), performance.now() - started);
    const result = emptyRepairResult(path, dryRun, before);
    if (before.exitCode === 0 && !wantRebuild) return result;

    const flags = [
      wantLeaks && 'leaks',
      wantErrors && 'refcounts',
      wantCopied && 'copied',
      wantRebuild && 'rebuild',
    ]
      .filter(Boolean)
      .join(', ');
    // The size before any change (a rebuild grows the file before its first logged write).
    const originalSize = file.size;
    const writer = new MetadataWriter(
      file,
      logPath === undefined
        ? undefined
        : () => UndoLogWriter.begin(logPath, originalSize, `repair (${flags})`),
      dryRun,
    );
    try {
      await repairAnalysed(file, analysis, result, writer, options);
      await writer.sync();
      if (writer.log !== undefined) {
        await writer.log.finish(file.size);
        result.undoLog = writer.log.path;
      }
    } catch (error) {
      await writer.log?.abandon();
      throw error;
    }
    result.writes = writer.writes;
    result.bytesWritten = writer.bytes;
    result.planned = writer.planned;
    return result;
  } finally {
    await file.close();
  }
}

function selection(options: RepairOptions) {
  const explicit = options.leaks || options.refcounts || options.copied || options.rebuildRefcounts;
  return {
    wantLeaks: explicit ? options.leaks === true : true,
    wantErrors: explicit ? options.refcounts === true : true,
    wantCopied: explicit ? options.copied === true : true,
    wantRebuild: options.rebuildRefcounts === true,
  };
}

/** A result with nothing done yet, for the image as `before` describes it. */
export function emptyRepairResult(
  path: string,
  dryRun: boolean,
  before: CheckReport,
): RepairResult {
  return {
    image: path,
    dryRun,
    before,
    after: undefined,
    leaksFixed: 0,
    refcountsFixed: 0,
    copiedFixed: 0,
    rebuilt: undefined,
    flagsCleared: [],
    refused: [],
    writes: 0,
    bytesWritten: 0,
    planned: [],
    undoLog: undefined,
    exitCode: before.exitCode,
  };
}

/**
 * The repair itself, on an image already open and analysed, through the
 * caller's MetadataWriter (so a caller that made its own changes first, like
 * a snapshot rescue, keeps everything in one undo session). Fills in
 * `result`; the caller syncs the writer and finishes the undo log.
 */
export async function repairAnalysed(
  file: FileDevice,
  analysis: ImageAnalysis,
  result: RepairResult,
  writer: MetadataWriter,
  options: RepairOptions,
): Promise<void> {
  const { wantLeaks, wantErrors, wantCopied, wantRebuild } = selection(options);
  const { findings } = analysis;
  const { before, refused, dryRun } = result;
  const path = result.image;
  // Leaks may belong to what the walk could not see: keep them until that is fixed.
  const damagedSnapshots =
    analysis.snapshotTable.damaged || analysis.snapshotTable.snapshots.some((s) => !s.l1Readable);
  const damagedTables = TABLE_DAMAGE.some((kind) => findings.count(kind) > 0);
  const leaksUnsafe = damagedSnapshots || damagedTables;
  if (wantLeaks && leaksUnsafe && before.leaks > 0) {
    refused.push(
      `${before.leaks} leaked clusters were not freed: ${damagedSnapshots ? 'the snapshot table is damaged' : 'some L1/L2 entries are invalid'}, so they may still belong to data the check could not reach; fix that first (see qcow2 check --mode error)`,
    );
  }
  const rebuildNeeded =
    analysis.compare.uncovered > 0 ||
    findings.count('refcount-table') > 0 ||
    findings.count('refcount-table-entry') > 0 ||
    refcountStructureOverlaps(analysis);
  if (wantRebuild || (wantErrors && rebuildNeeded)) {
    result.rebuilt = await rebuild(
      file,
      analysis,
      writer,
      leaksUnsafe || !wantLeaks,
      options.signal,
    );
  } else if (wantLeaks || wantErrors) {
    const fix = await fixRefcounts(analysis, writer, {
      fixLeaks: wantLeaks && !leaksUnsafe,
      fixErrors: wantErrors,
      protectedClusters: analysis.aliased,
      signal: options.signal,
    });
    result.leaksFixed = fix.leaksFixed;
    result.refcountsFixed = fix.errorsFixed;
    if (fix.protectedSkipped > 0) {
      refused.push(
        `${fix.protectedSkipped} refcounts were left alone where guest data and metadata share clusters: raising them (as qemu-img does) would hide the aliasing; repoint the L2 entries named by qcow2 check --mode error`,
      );
    }
  }
  if (analysis.aliased.end > 0 && wantErrors && result.rebuilt !== undefined) {
    refused.push(
      'guest data aliases metadata: the rebuilt refcounts count both uses; repoint the L2 entries named by qcow2 check --mode error',
    );
  }

  if (wantCopied) {
    const { facts, lookup } = await copiedContext(
      file,
      analysis,
      dryRun,
      wantLeaks || wantErrors || wantRebuild,
    );
    const active = walkOwners(facts, [])[0];
    if (active !== undefined) {
      result.copiedFixed = await fixCopiedFlags(facts, active, lookup, writer, {
        protectedClusters: analysis.aliased,
        signal: options.signal,
      });
    }
  }

  if (!dryRun) {
    let after = await recheck(file, path);
    const remaining = (kinds: FindingKind[]) => kinds.some((kind) => (after.counts[kind] ?? 0) > 0);
    const clear: bigint[] = [];
    if (
      after.dirtyBit &&
      !remaining(['refcount-error', 'refcount-table', 'refcount-table-entry'])
    ) {
      clear.push(QCOW2_INCOMPAT_DIRTY);
      result.flagsCleared.push('dirty');
    }
    if (after.corruptBit && !remaining(CORRUPTION_LEFT)) {
      clear.push(QCOW2_INCOMPAT_CORRUPT);
      result.flagsCleared.push('corrupt');
    }
    if (clear.length > 0) {
      await updateIncompatibleFeatures(
        writer,
        { clear: clear.reduce((a, b) => a | b, 0n) },
        `header: clear ${result.flagsCleared.join(' and ')} bit`,
      );
      after = await recheck(file, path);
    }
    result.after = after;
    result.exitCode = after.exitCode;
  }
}

/**
 * Rebuilds the refcount structure of an image from its L1/L2 tables, snapshot
 * tables and other metadata, and fixes the active COPIED flags to match.
 *
 * For callers that change tables wholesale — e.g. applying a snapshot over
 * damaged active tables: point the active L1 at a copy of the snapshot's L1,
 * then call this to recount everything instead of adjusting refcounts one by
 * one. The old refcount table and blocks are left in place, unreferenced (the
 * new ones are appended); the header is switched in one write at the end.
 * Clears the dirty bit. Keeps an undo log unless `undoLog` is false.
 *
 * What it counts: the header cluster, the active L1 and L2 tables with their
 * data, every snapshot's L1/L2 tables and data (snapshots whose L1 cannot be
 * read keep the refcounts they had), the snapshot table, bitmaps and the
 * crypto header. Active L2 tables that are invalid (past the end, misplaced)
 * are reported in `result.before` and not followed — so after pointing the
 * active L1 at good tables, the old broken ones simply stop counting.
 * Close any handle you hold on the image for writing before calling it: it
 * opens the file itself. `result.after` is the check afterwards; its
 * `exitCode` 0 means qemu-img will call the image clean.
 */
export async function rebuildRefcounts(
  path: string,
  options: LongRunningOptions & {
    undoLog?: string | false | undefined;
    dryRun?: boolean | undefined;
  } = {},
): Promise<RepairResult> {
  return repairImage(path, { ...options, rebuildRefcounts: true, leaks: true, copied: true });
}

async function rebuild(
  file: FileDevice,
  analysis: ImageAnalysis,
  writer: MetadataWriter,
  keepUnreferenced: boolean,
  signal: AbortSignal | undefined,
): Promise<RefcountStructurePlan> {
  // Count again without the old refcount structures: they become free space.
  const fresh = await analyseImage(file, { excludeRefcountStructures: true, signal });
  const oldStructures = new RefcountTally({ saturating: true });
  const { facts, stored } = analysis;
  if (facts.refcountTable.readable) {
    const first = Math.floor(facts.refcountTable.offset / facts.clusterSize);
    oldStructures.addRange(first, Math.ceil(facts.refcountTable.length / facts.clusterSize));
  }
  for (let index = 0; index < stored.entries; index++) {
    const offset = stored.blockOffset(index);
    if (offset > 0) oldStructures.add(Math.floor(offset / facts.clusterSize));
  }
  return writeRefcountStructure(file, fresh.facts, fresh.tally, writer, {
    keepUnreferenced: keepUnreferenced ? { stored, oldStructures } : undefined,
    signal,
  });
}

/** Whether a refcount table or block shares clusters with other metadata or data. */
function refcountStructureOverlaps(analysis: ImageAnalysis): boolean {
  const { stored, aliased, facts } = analysis;
  for (let index = 0; index < stored.entries; index++) {
    const offset = stored.blockOffset(index);
    if (offset > 0 && aliased.get(Math.floor(offset / facts.clusterSize)) > 0) return true;
  }
  if (!facts.refcountTable.readable) return false;
  const first = Math.floor(facts.refcountTable.offset / facts.clusterSize);
  return aliased.anyInRange(first, Math.ceil(facts.refcountTable.length / facts.clusterSize));
}

/** The header and refcounts COPIED is judged against: as repaired (or, in a dry run, as they would be). */
async function copiedContext(
  file: FileDevice,
  analysis: ImageAnalysis,
  dryRun: boolean,
  refcountsRepaired: boolean,
): Promise<{ facts: ImageAnalysis['facts']; lookup: RefcountLookup }> {
  if (dryRun) {
    const limit = maxRefcount(analysis.facts.geometry.refcountOrder);
    const stored = storedLookup(analysis.stored);
    return {
      facts: analysis.facts,
      lookup: refcountsRepaired
        ? (cluster) => Math.min(limit, analysis.tally.get(cluster))
        : stored,
    };
  }
  const findings = new FindingCollector();
  const facts = await readHeaderFacts(file, findings);
  const stored = await StoredRefcounts.load(file, facts, findings);
  return { facts, lookup: storedLookup(stored) };
}

async function recheck(file: FileDevice, path: string): Promise<CheckReport> {
  const started = performance.now();
  const analysis = await analyseImage(file);
  return buildReport(analysis, await allocatedBytes(path), performance.now() - started);
}

async function allocatedBytes(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).blocks * 512;
  } catch {
    return undefined;
  }
}
