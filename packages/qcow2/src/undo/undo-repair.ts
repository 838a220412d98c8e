import { crc32 } from 'node:zlib';
import { BlockIoError, FileDevice, optionRemedy } from '@x/blockio';
import { Qcow2Error } from '../errors.js';
import { dropLastSession, readUndoLog, undoLogPath } from './undo-log.js';

export interface UndoOptions {
  /** Undo log path (default `<image>.qcow2-undo`). */
  undoLog?: string | undefined;
  /** Restore even where the image changed since the repair (its later changes there are lost). */
  force?: boolean | undefined;
  /** Check what would be restored; change nothing. */
  dryRun?: boolean | undefined;
}

export interface UndoResult {
  image: string;
  undoLog: string;
  /** What the undone session was ("repair (leaks, refcounts, copied)", "poke", …) and when. */
  description: string;
  timeMs: number;
  /** False when the session was interrupted (its complete records are still restored). */
  complete: boolean;
  records: number;
  restoredBytes: number;
  /** Ranges that no longer held what the session wrote (restored only with `force`). */
  changedSince: number;
  /** Image size restored (the session recorded it before any write). */
  imageSize: number;
  /** Sessions left in the log. */
  remainingSessions: number;
  dryRun: boolean;
}

/**
 * Undoes the most recent session of an image's undo log: puts back every
 * byte the session overwrote (newest first), restores the image's size, and
 * removes the session from the log. Refuses, unless forced, when the image
 * changed since in a range the session wrote. With nothing to undo (no log,
 * or a log without sessions) it throws ENOENT.
 */
export async function undoRepair(path: string, options: UndoOptions = {}): Promise<UndoResult> {
  const logPath = options.undoLog ?? undoLogPath(path);
  const sessions = await readUndoLog(logPath);
  const session = sessions.at(-1);
  if (session === undefined) {
    // Nothing is damaged (a log whose first session header was cut short holds
    // none): the same outcome, and code, as when there is no log at all.
    throw new BlockIoError('ENOENT', 'the undo log holds no sessions: nothing to undo', {
      path: logPath,
      structure: 'undo log',
    });
  }
  const dryRun = options.dryRun === true;
  const file = await FileDevice.open(path, { writable: !dryRun });
  try {
    let changedSince = 0;
    for (const record of session.records) {
      const inside = Math.max(0, Math.min(record.old.length, file.size - record.offset));
      const current = inside > 0 ? await file.read(record.offset, inside) : Buffer.alloc(0);
      const crc = crc32(current);
      if (inside !== record.old.length || (crc !== record.newCrc && crc !== record.oldCrc))
        changedSince++;
    }
    if (changedSince > 0 && !options.force) {
      throw new Qcow2Error(
        'CHANGED',
        `${changedSince} of the ${session.records.length} ranges this session wrote have changed since; undoing would lose those changes (${optionRemedy('force')} to undo anyway)`,
        { path, structure: 'undo log' },
      );
    }
    let restoredBytes = 0;
    if (!dryRun) {
      if (file.size < session.imageSize) await file.truncate(session.imageSize);
      for (let index = session.records.length - 1; index >= 0; index--) {
        const record = session.records[index];
        if (record === undefined || record.old.length === 0) continue;
        await file.write(record.offset, record.old);
        restoredBytes += record.old.length;
      }
      if (file.size !== session.imageSize) await file.truncate(session.imageSize);
      await file.flush();
      await dropLastSession(logPath, session);
    } else {
      for (const record of session.records) restoredBytes += record.old.length;
    }
    return {
      image: path,
      undoLog: logPath,
      description: session.description,
      timeMs: session.timeMs,
      complete: session.complete,
      records: session.records.length,
      restoredBytes,
      changedSince,
      imageSize: session.imageSize,
      remainingSessions: sessions.length - (dryRun ? 0 : 1),
      dryRun,
    };
  } finally {
    await file.close();
  }
}
