import { stat } from 'node:fs/promises';
import { FileDevice } from '@x/blockio';
import { analyseImage, type ImageAnalysis } from '../check/analyse.js';
import { buildReport } from '../check/check-image.js';
import type { CheckReport } from '../check/report.js';
import type { SnapshotInfo } from '../check/snapshot-table.js';
import { requireQcow2Magic } from '../edit/require-qcow2.js';
import { Qcow2Error } from '../errors.js';
import { QCOW_MAX_L1_SIZE, QCOW2_AUTOCLEAR_DATA_FILE_RAW } from '../format/constants.js';
import { MetadataWriter } from '../repair/metadata-writer.js';
import type { RefcountStructurePlan } from '../repair/rebuild-structure.js';
import { emptyRepairResult, repairAnalysed } from '../repair/repair-image.js';
import { UndoLogWriter, undoLogPath } from '../undo/undo-log.js';
import { HEADER_AUTOCLEAR_OFFSET } from '../write/header-writer.js';
import { type SnapshotApplyDamage, snapshotTableProblems } from './snapshot-damage.js';

/** What a rescue apply did, beside the snapshot it reverted to. */
export interface SnapshotRescue {
  /** What was wrong with the image before (check's findings above leaks and COPIED). */
  damage: SnapshotApplyDamage[];
  /** check's exit code before the rescue. */
  exitCodeBefore: number;
  /** Where the copy of the snapshot's L1 table, now the active one, was written. */
  l1TableOffset: number;
  l1Size: number;
  /** The new refcount structure, counted from the snapshot tables and everything else in use. */
  rebuilt: RefcountStructurePlan | undefined;
  copiedFixed: number;
  flagsCleared: Array<'corrupt' | 'dirty'>;
  /** What the refcount rebuild left alone, and why (as `qcow2 repair` reports it). */
  refused: string[];
  writes: number;
  bytesWritten: number;
  /** The undo log: `qcow2 undo <image>` puts every overwritten byte back. */
  undoLog: string | undefined;
  /** The check afterwards; exitCode 0 means qemu-img calls the image clean. */
  after: CheckReport | undefined;
  exitCode: number;
}

export interface RescueOptions {
  /** Undo log path (default `<image>.qcow2-undo`); false for none. */
  undoLog?: string | false | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Reverts to a snapshot without trusting the active state: the snapshot's
 * tables are verified first (and the image is left untouched with a
 * SNAPSHOT_DAMAGED error if they are not intact), then a copy of its L1 table
 * is appended to the file and the header pointed at it, and the whole
 * refcount structure is rebuilt from the tables now in use, so the abandoned
 * active clusters become free. COPIED flags are fixed and the corrupt and
 * dirty bits cleared once the image checks clean. Every byte overwritten goes
 * to one undo log session.
 *
 * The new L1 table is appended rather than written over the active one: the
 * active table's location is part of what may be damaged (unaligned, past
 * the end, overlapping the snapshot's own clusters).
 */
export async function rescueApply(
  path: string,
  info: SnapshotInfo,
  damage: SnapshotApplyDamage[],
  exitCodeBefore: number,
  options: RescueOptions = {},
): Promise<SnapshotRescue> {
  const file = await FileDevice.open(path, { writable: true });
  try {
    await requireQcow2Magic(file);
    const analysis = await analyseImage(file, { snapshot: info.id, signal: options.signal });
    refuseUnlessRescuable(analysis, info);
    const problems = await snapshotTableProblems(analysis, info);
    if (problems.length > 0) {
      throw new Qcow2Error(
        'SNAPSHOT_DAMAGED',
        `cannot revert to ${info.label}: the image's active state is damaged (${damage.map((d) => d.kind).join(', ')}) and so are the snapshot's own tables: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? `; and more (qcow2 check --snapshot ${info.id} --mode error lists them)` : ''}. Nothing was written.`,
        { path, offset: info.entryOffset, structure: `snapshot table entry ${info.index}` },
      );
    }
    const { facts } = analysis;
    const clusterSize = facts.clusterSize;
    const virtualSize = info.diskSize === undefined ? facts.virtualSize : Number(info.diskSize);
    const l1Size = Math.max(info.l1Size, facts.geometry.l1EntriesFor(virtualSize));
    if (l1Size * 8 > QCOW_MAX_L1_SIZE) {
      throw new Qcow2Error('TOO_LARGE', `an L1 table of ${l1Size} entries exceeds 32 MiB`, {
        path,
        structure: 'active L1 table',
      });
    }
    const l1Clusters = Math.ceil((l1Size * 8) / clusterSize);
    const l1Offset = l1Size === 0 ? 0 : Math.ceil(file.size / clusterSize) * clusterSize;
    const l1 = Buffer.alloc(l1Clusters * clusterSize);
    if (info.l1Size > 0) await file.read(info.l1Offset, l1.subarray(0, info.l1Size * 8));

    const logPath = options.undoLog === false ? undefined : (options.undoLog ?? undoLogPath(path));
    const originalSize = file.size;
    const writer = new MetadataWriter(
      file,
      logPath === undefined
        ? undefined
        : () =>
            UndoLogWriter.begin(
              logPath,
              originalSize,
              `snapshot apply ${info.id} (rescue: ${damage.map((d) => d.kind).join(', ')})`,
            ),
      false,
    );
    try {
      if (l1Clusters > 0) {
        await file.truncate(l1Offset + l1.byteLength);
        await writer.queue(l1Offset, l1, `active L1 table: copy of the L1 table of ${info.label}`);
        await writer.sync();
      }
      await switchActiveL1(writer, analysis, { l1Offset, l1Size, virtualSize });
      const after = await analyseImage(file, { signal: options.signal });
      const result = emptyRepairResult(path, false, report(after, await allocated(path)));
      await repairAnalysed(file, after, result, writer, {
        rebuildRefcounts: true,
        leaks: true,
        copied: true,
        signal: options.signal,
      });
      await writer.sync();
      let undoLog: string | undefined;
      if (writer.log !== undefined) {
        await writer.log.finish(file.size);
        undoLog = writer.log.path;
      }
      return {
        damage,
        exitCodeBefore,
        l1TableOffset: l1Offset,
        l1Size,
        rebuilt: result.rebuilt,
        copiedFixed: result.copiedFixed,
        flagsCleared: result.flagsCleared,
        refused: result.refused,
        writes: writer.writes,
        bytesWritten: writer.bytes,
        undoLog,
        after: result.after,
        exitCode: result.exitCode,
      };
    } catch (error) {
      await writer.log?.abandon();
      throw error;
    }
  } finally {
    await file.close();
  }
}

/** Damage a rescue does not repair: the header itself. */
function refuseUnlessRescuable(analysis: ImageAnalysis, info: SnapshotInfo): void {
  const header = analysis.findings.kept('header')[0];
  if (header !== undefined) {
    throw new Qcow2Error(
      'CORRUPT',
      `cannot revert to ${info.label}: the qcow2 header itself is damaged (${header.message}); a rescue only replaces the active tables and refcounts (see qcow2 check --mode error)`,
      { path: analysis.facts.path, offset: header.entryOffset, structure: 'qcow2 header' },
    );
  }
}

/**
 * Points the header at the new active L1 table (and the snapshot's disk size)
 * in one write of the fields QEMU keeps together, after the table is on disk.
 * Clears the autoclear bits QEMU's own apply would leave invalid (bitmaps).
 */
async function switchActiveL1(
  writer: MetadataWriter,
  analysis: ImageAnalysis,
  target: { l1Offset: number; l1Size: number; virtualSize: number },
): Promise<void> {
  const { facts } = analysis;
  // Bytes 24..48: size, crypt_method (kept), l1_size, l1_table_offset.
  const fields = Buffer.from(await writer.image.read(24, 24));
  fields.writeBigUInt64BE(BigInt(target.virtualSize), 0);
  fields.writeUInt32BE(target.l1Size, 12);
  fields.writeBigUInt64BE(BigInt(target.l1Offset), 16);
  await writer.queue(24, fields, 'header: size, l1_size and l1_table_offset of the snapshot');
  if (facts.version >= 3) {
    const autoclear = facts.header.autoclearFeatures;
    const keep = autoclear & QCOW2_AUTOCLEAR_DATA_FILE_RAW;
    if (keep !== autoclear) {
      const bytes = Buffer.alloc(8);
      bytes.writeBigUInt64BE(keep);
      await writer.queue(
        HEADER_AUTOCLEAR_OFFSET,
        bytes,
        'header: clear autoclear bits (bitmaps no longer match the data)',
      );
    }
  }
  await writer.sync();
}

function report(analysis: ImageAnalysis, allocatedBytes: number | undefined): CheckReport {
  return buildReport(analysis, allocatedBytes, 0);
}

async function allocated(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).blocks * 512;
  } catch {
    return undefined;
  }
}
