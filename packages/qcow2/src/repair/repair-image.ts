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
import { CopiedLocks } from './copied-locks.js';
import { fixCopiedFlags, type RefcountLookup, storedLookup } from './fix-copied.js';
import { fixRefcounts } from './fix-refcounts.js';
import { updateIncompatibleFeatures } from './header-flags.js';
import { leaksUnsafeReason } from './leak-safety.js';
import { MetadataWriter, type PlannedWrite } from './metadata-writer.js';
import {
  placeRefcountStructure,
  type RefcountStructurePlan,
  writeRefcountStructure,
} from './rebuild-structure.js';

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
  /**
   * Leaked clusters deliberately left allocated (refcount above the references)
   * because a damaged table may still own them; `refused` says which.
   */
  leaksKept: number;
  refcountsFixed: number;
  copiedFixed: number;
  rebuilt: RefcountStructurePlan | undefined;
  flagsCleared: Array<'corrupt' | 'dirty'>;
  /** What was deliberately not repaired, and why. */
  refused: string[];
  /** What the repair did that the user should know about (beyond the counts). */
  notes: string[];
  writes: number;
  bytesWritten: number;
  /** The writes (first 1000), with what each fixes. */
  planned: PlannedWrite[];
  /** The undo log written, if anything was written. */
  undoLog: string | undefined;
  /** `check`'s exit code for the image afterwards (before, in a dry run). */
  exitCode: number;
}

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
      // A rebuild grows the file before its first logged write: put the size back if that is all it did.
      if (writer.log === undefined && !dryRun && file.size !== originalSize) {
        await file.truncate(originalSize).catch(() => {});
      }
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
    leaksKept: 0,
    refcountsFixed: 0,
    copiedFixed: 0,
    rebuilt: undefined,
    flagsCleared: [],
    refused: [],
    notes: [],
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
  const unsafeReason = leaksUnsafeReason(analysis);
  const leaksUnsafe = unsafeReason !== undefined;
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
      leaksUnsafe,
      result.notes,
      options.signal,
    );
  } else if (wantLeaks || wantErrors) {
    const copiedLocks = await CopiedLocks.collect(
      file,
      analysis.facts,
      analysis.owners.find((owner) => owner.active),
      analysis.aliased,
      options.signal,
    );
    const fix = await fixRefcounts(analysis, writer, {
      fixLeaks: wantLeaks && !leaksUnsafe,
      fixErrors: wantErrors,
      protectedClusters: analysis.aliased,
      copiedLocks,
      signal: options.signal,
    });
    result.leaksFixed = fix.leaksFixed;
    result.refcountsFixed = fix.errorsFixed;
    result.leaksKept = wantLeaks && leaksUnsafe ? before.leaks : fix.leaksLeft;
    if (fix.copiedLockedSkipped > 0) {
      refused.push(
        `${fix.copiedLockedSkipped} refcounts were left alone: changing them would make COPIED flags wrong in L2 tables that share their cluster with other metadata or guest data (which repair never writes into), adding errors; fix those tables first (qcow2 check --mode error names them)`,
      );
    }
    if (fix.protectedSkipped > 0) {
      refused.push(
        `${fix.protectedSkipped} refcounts were left alone where guest data and metadata share clusters (or two metadata structures do): raising them (as qemu-img does) would hide the aliasing; repoint the L2 entries named by qcow2 check --mode error`,
      );
    }
  }
  if (result.rebuilt !== undefined) {
    result.leaksKept = result.rebuilt.keptClusters;
    if (result.rebuilt.lockedClusters > 0) {
      refused.push(
        `${result.rebuilt.lockedClusters} clusters kept their stored refcounts: the counted ones would make COPIED flags wrong in L2 tables that share their cluster with other metadata or guest data (which repair never writes into), adding errors; fix those tables first (qcow2 check --mode error names them)`,
      );
    }
  }
  if (wantLeaks && leaksUnsafe && result.leaksKept > 0) {
    refused.push(
      `${result.leaksKept} leaked clusters were kept, not freed: ${unsafeReason}; they may still belong to data the check could not reach. Fix that first (qcow2 check --mode error names it), then run qcow2 repair --leaks`,
    );
  }
  if (analysis.aliased.end > 0 && wantErrors && result.rebuilt !== undefined) {
    refused.push(
      'guest data aliases metadata: the rebuilt refcounts count both uses; repoint the L2 entries named by qcow2 check --mode error',
    );
  }

  if (wantErrors) noteSharedTables(analysis, result.notes);

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
  unknownAllocated: boolean,
  notes: string[],
  signal: AbortSignal | undefined,
): Promise<RefcountStructurePlan> {
  const { facts: before } = analysis;
  let plan = placeRefcountStructure(
    before,
    Math.max(before.fileClusters, analysis.tally.end),
    analysis.beyondEnd,
  );
  noteReferencesBeyondEnd(analysis, plan, notes);
  let fresh: ImageAnalysis | undefined;
  for (let attempt = 0; ; attempt++) {
    // Grow the file first, so references that now fall inside it are counted like any other.
    if (!writer.dryRun && file.size < plan.fileSize) await file.truncate(plan.fileSize);
    // Count again without the old refcount structures: they become free space.
    fresh = await analyseImage(file, { excludeRefcountStructures: true, signal });
    // Growing the file can make a structure readable that was not (a snapshot table cut off by
    // a truncation): if what it references reaches the new structure, place it again, further.
    const span = plan.blocks + plan.refcountTableClusters;
    const clear =
      !fresh.tally.anyInRange(plan.blocksCluster, span) &&
      fresh.beyondEnd.firstOverlapEnd(plan.blocksCluster, plan.blocksCluster + span) === undefined;
    if (clear || attempt === 3) break;
    plan = placeRefcountStructure(
      fresh.facts,
      Math.max(plan.blocksCluster + span, fresh.tally.end),
      fresh.beyondEnd,
    );
  }
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
  const locks = await CopiedLocks.collect(
    file,
    fresh.facts,
    fresh.owners.find((owner) => owner.active),
    analysis.aliased,
    signal,
  );
  return writeRefcountStructure(file, fresh.facts, fresh.tally, writer, {
    plan,
    copiedLocks: locks.size > 0 ? { locks, stored } : undefined,
    keepUnreferenced: keepUnreferenced
      ? { stored, oldStructures, oldFileClusters: facts.fileClusters, unknownAllocated }
      : undefined,
    signal,
  });
}

/**
 * Names the L2 tables that two L1 entries share. Repair treats such a table as
 * a whole, as qemu-img check -r all leaves it: the table and its clusters get
 * one reference per entry and COPIED is cleared, so a guest write to either
 * range copies instead of changing both. Which range shows the right data is
 * for the user to judge, so the sharing stays reported.
 */
function noteSharedTables(analysis: ImageAnalysis, notes: string[]): void {
  for (const table of analysis.sharedL2Tables.slice(0, 20)) {
    const whose = table.owner < 0 ? 'active' : `snapshot #${table.owner}'s`;
    const entries = table.l1Indices.join(' and ');
    notes.push(
      `${whose} L1 entries ${entries} share the L2 table at 0x${table.offset.toString(16)}: it and the clusters it maps are counted once per entry${table.owner < 0 ? ' and their COPIED flags cleared' : ''} (as qemu-img check -r all leaves them), so a write to one guest range no longer changes the other; one of those ranges probably shows the other's data (its own L2 table was lost)`,
    );
  }
  if (analysis.sharedL2Tables.length > 20) {
    notes.push(
      `${analysis.sharedL2Tables.length - 20} more shared L2 tables (qcow2 check --mode error lists them)`,
    );
  }
}

/** Says what became of the references past the end of the file once the new structure is placed. */
function noteReferencesBeyondEnd(
  analysis: ImageAnalysis,
  plan: RefcountStructurePlan,
  notes: string[],
): void {
  const ranges = analysis.beyondEnd.ranges();
  if (ranges.length === 0) return;
  const clusterSize = analysis.facts.clusterSize;
  let inside = 0;
  let outside = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    const start = ranges[i] as number;
    const end = ranges[i + 1] as number;
    inside += Math.max(0, Math.min(end, plan.blocksCluster) - start);
    outside += Math.max(0, end - Math.max(start, plan.blocksCluster));
  }
  const at = `0x${(plan.blocksCluster * clusterSize).toString(16)}`;
  if (inside > 0) {
    notes.push(
      `${inside} clusters that tables reference past the end of the file (a truncated file?) now lie inside it, before the new refcount structure at ${at}: they read as zeros, as QEMU read them before; what they held was lost before this repair (the check before it lists the entries)`,
    );
  }
  if (outside > 0) {
    notes.push(
      `${outside} clusters referenced far past the end of the file stay there (the new refcount structure at ${at} is placed clear of them); those entries are still reported`,
    );
  }
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
