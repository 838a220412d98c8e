import { constants } from 'node:fs';
import { type FileHandle, open, stat, unlink } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { type BlockDevice, fromSystemError } from '@x/blockio';
import { Qcow2Error } from '../errors.js';

/**
 * The undo log (`<image>.qcow2-undo`): before any metadata byte of an image is
 * overwritten, the old bytes are appended here and flushed to stable storage.
 * `undoRepair` puts them back, newest session first.
 *
 * Layout (all integers big-endian):
 *   file header   "QCOW2UNDO" 0x00 version:u16 reserved:u32          (16 bytes)
 *   session       "SESN" imageSize:u64 timeMs:u64 descLen:u32 desc   (padded to 8)
 *   record        "RECD" offset:u64 length:u32 oldCrc:u32 newCrc:u32 old bytes (padded to 8)
 *   session end   "DONE" imageSize:u64 records:u32 reserved:u32      (24 bytes)
 * A session without "DONE" was interrupted; its complete records still undo
 * exactly what was written (the image is only written after its record is
 * flushed). A torn record at the end was never followed by a write.
 */
export const UNDO_LOG_SUFFIX = '.qcow2-undo';
const FILE_MAGIC = Buffer.from('QCOW2UNDO\0', 'latin1');
const FILE_HEADER_SIZE = 16;
const VERSION = 1;
const SESSION = 0x5345534e; // "SESN"
const RECORD = 0x52454344; // "RECD"
const DONE = 0x444f4e45; // "DONE"
const RECORD_HEADER_SIZE = 24;
const DONE_SIZE = 24;

const pad8 = (n: number) => Math.ceil(n / 8) * 8;

export function undoLogPath(imagePath: string): string {
  return `${imagePath}${UNDO_LOG_SUFFIX}`;
}

/** One saved range: the bytes an image had at `offset` before a write replaced them. */
export interface UndoRecord {
  offset: number;
  /** Old bytes (only the part that lay inside the image at the time). */
  old: Buffer;
  /** Bytes the write put there (length of the write). */
  writtenLength: number;
  oldCrc: number;
  newCrc: number;
}

export interface UndoSession {
  /** Byte offset of the session in the log (the log is cut back to here when it is undone). */
  logOffset: number;
  imageSize: number;
  timeMs: number;
  description: string;
  records: UndoRecord[];
  /** Whether the session ended normally. */
  complete: boolean;
  /** Image size when the session ended (complete sessions only). */
  finalSize: number | undefined;
}

/** Appends one session to an undo log. */
export class UndoLogWriter {
  readonly path: string;
  readonly #handle: FileHandle;
  #end: number;
  #records = 0;
  readonly #imageSize: number;

  private constructor(path: string, handle: FileHandle, end: number, imageSize: number) {
    this.path = path;
    this.#handle = handle;
    this.#end = end;
    this.#imageSize = imageSize;
  }

  /** Opens (or creates) the log and starts a session for an image of `imageSize` bytes. */
  static async begin(path: string, imageSize: number, description: string): Promise<UndoLogWriter> {
    let handle: FileHandle;
    try {
      handle = await open(path, constants.O_RDWR | constants.O_CREAT, 0o600);
    } catch (error) {
      throw fromSystemError(error, 'open the undo log', { path });
    }
    try {
      let end = (await handle.stat()).size;
      if (end === 0) {
        const header = Buffer.alloc(FILE_HEADER_SIZE);
        FILE_MAGIC.copy(header, 0);
        header.writeUInt16BE(VERSION, 10);
        await handle.write(header, 0, header.length, 0);
        end = FILE_HEADER_SIZE;
      } else {
        const header = Buffer.alloc(FILE_HEADER_SIZE);
        await handle.read(header, 0, FILE_HEADER_SIZE, 0);
        if (!header.subarray(0, 10).equals(FILE_MAGIC)) {
          throw new Qcow2Error(
            'CORRUPT',
            'not a qcow2 undo log (bad magic); refusing to append to it',
            {
              path,
              offset: 0,
              structure: 'undo log',
            },
          );
        }
        // A torn tail from an interrupted run is cut off before appending.
        end = (await readUndoLogFrom(handle, path)).validEnd;
      }
      const text = Buffer.from(description, 'utf8');
      const session = Buffer.alloc(pad8(24 + text.length));
      session.writeUInt32BE(SESSION, 0);
      session.writeBigUInt64BE(BigInt(imageSize), 4);
      session.writeBigUInt64BE(BigInt(Date.now()), 12);
      session.writeUInt32BE(text.length, 20);
      text.copy(session, 24);
      await handle.truncate(end);
      await handle.write(session, 0, session.length, end);
      await handle.sync();
      return new UndoLogWriter(path, handle, end + session.length, imageSize);
    } catch (error) {
      await handle.close().catch(() => {});
      throw error instanceof Qcow2Error
        ? error
        : fromSystemError(error, 'write the undo log', { path });
    }
  }

  /**
   * Saves the current bytes under each write (read from `image`) and flushes
   * the log. Call before performing the writes.
   */
  async save(
    image: BlockDevice,
    writes: ReadonlyArray<{ offset: number; data: Uint8Array }>,
  ): Promise<void> {
    const parts: Buffer[] = [];
    for (const write of writes) {
      const inside = Math.max(
        0,
        Math.min(write.data.byteLength, this.#imageSize - write.offset, image.size - write.offset),
      );
      const old = inside > 0 ? await image.read(write.offset, inside) : Buffer.alloc(0);
      const record = Buffer.alloc(pad8(RECORD_HEADER_SIZE + old.length));
      record.writeUInt32BE(RECORD, 0);
      record.writeBigUInt64BE(BigInt(write.offset), 4);
      record.writeUInt32BE(old.length, 12);
      record.writeUInt32BE(crc32(old), 16);
      record.writeUInt32BE(crc32(write.data.subarray(0, old.length)), 20);
      old.copy(record, RECORD_HEADER_SIZE);
      parts.push(record);
      this.#records++;
    }
    if (parts.length === 0) return;
    const chunk = Buffer.concat(parts);
    try {
      await this.#handle.write(chunk, 0, chunk.length, this.#end);
      await this.#handle.sync();
    } catch (error) {
      throw fromSystemError(error, 'write the undo log', { path: this.path, offset: this.#end });
    }
    this.#end += chunk.length;
  }

  /** Ends the session (the image is now `finalSize` bytes) and closes the log. */
  async finish(finalSize: number): Promise<void> {
    const done = Buffer.alloc(DONE_SIZE);
    done.writeUInt32BE(DONE, 0);
    done.writeBigUInt64BE(BigInt(finalSize), 4);
    done.writeUInt32BE(this.#records, 12);
    try {
      await this.#handle.write(done, 0, done.length, this.#end);
      await this.#handle.sync();
    } finally {
      await this.#handle.close();
    }
    this.#end += DONE_SIZE;
  }

  /** Closes without ending the session (after a failure: the records stay usable). */
  async abandon(): Promise<void> {
    await this.#handle.close().catch(() => {});
  }

  get records(): number {
    return this.#records;
  }
}

/** Reads every session of an undo log. */
export async function readUndoLog(path: string): Promise<UndoSession[]> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw fromSystemError(error, 'open the undo log', { path });
  }
  try {
    return (await readUndoLogFrom(handle, path)).sessions;
  } finally {
    await handle.close();
  }
}

async function readUndoLogFrom(
  handle: FileHandle,
  path: string,
): Promise<{ sessions: UndoSession[]; validEnd: number }> {
  const size = (await handle.stat()).size;
  const header = Buffer.alloc(FILE_HEADER_SIZE);
  const { bytesRead } = await handle.read(header, 0, FILE_HEADER_SIZE, 0);
  if (bytesRead < FILE_HEADER_SIZE || !header.subarray(0, 10).equals(FILE_MAGIC)) {
    throw new Qcow2Error('CORRUPT', 'not a qcow2 undo log (bad magic)', {
      path,
      offset: 0,
      structure: 'undo log',
    });
  }
  if (header.readUInt16BE(10) !== VERSION) {
    throw new Qcow2Error(
      'UNSUPPORTED',
      `undo log version ${header.readUInt16BE(10)} is not ${VERSION}`,
      {
        path,
        offset: 10,
        structure: 'undo log',
      },
    );
  }
  const sessions: UndoSession[] = [];
  let at = FILE_HEADER_SIZE;
  let validEnd = at;
  const read = async (offset: number, length: number): Promise<Buffer | undefined> => {
    if (offset + length > size) return undefined;
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, offset);
    return buffer;
  };
  let session: UndoSession | undefined;
  for (;;) {
    const head = await read(at, 24);
    if (head === undefined) break;
    const tag = head.readUInt32BE(0);
    if (tag === SESSION) {
      const length = head.readUInt32BE(20);
      const text = await read(at + 24, length);
      if (text === undefined) break;
      session = {
        logOffset: at,
        imageSize: Number(head.readBigUInt64BE(4)),
        timeMs: Number(head.readBigUInt64BE(12)),
        description: text.toString('utf8'),
        records: [],
        complete: false,
        finalSize: undefined,
      };
      sessions.push(session);
      at += pad8(24 + length);
    } else if (tag === RECORD && session !== undefined) {
      const length = head.readUInt32BE(12);
      const old = await read(at + RECORD_HEADER_SIZE, length);
      if (old === undefined || crc32(old) !== head.readUInt32BE(16)) break; // torn record
      session.records.push({
        offset: Number(head.readBigUInt64BE(4)),
        old,
        writtenLength: length,
        oldCrc: head.readUInt32BE(16),
        newCrc: head.readUInt32BE(20),
      });
      at += pad8(RECORD_HEADER_SIZE + length);
    } else if (tag === DONE && session !== undefined) {
      session.complete = true;
      session.finalSize = Number(head.readBigUInt64BE(4));
      at += DONE_SIZE;
    } else {
      break;
    }
    validEnd = at;
  }
  return { sessions, validEnd };
}

/** Removes the last session from the log (deleting the log when it was the only one). */
export async function dropLastSession(path: string, session: UndoSession): Promise<void> {
  if (session.logOffset <= FILE_HEADER_SIZE) {
    await unlink(path);
    return;
  }
  const handle = await open(path, 'r+');
  try {
    await handle.truncate(session.logOffset);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function undoLogExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
