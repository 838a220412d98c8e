import { TapeRestoreError } from '../errors.js';
import type { TapeDrive } from '../tape/tape-drive.js';
import { isUuid } from '../uuid.js';
import { readTapeContent } from './content.js';

/** §1 MediaLabel JSON. */
export interface MediaLabel {
  readonly uuid: string;
  readonly label_text: string;
  readonly ctime: number;
  readonly pool?: string | undefined;
}

/** §1 MediaSetLabel JSON. */
export interface MediaSetLabel {
  readonly pool: string;
  readonly uuid: string;
  readonly seq_nr: number;
  readonly ctime: number;
  readonly encryption_key_fingerprint?: string | undefined;
}

export interface TapeLabels {
  readonly mediaLabel: MediaLabel;
  /** Absent on a tape that was labelled but never assigned to a media set. */
  readonly mediaSetLabel: MediaSetLabel | undefined;
}

/** Validates a MediaLabel object (from tape or inventory); returns the message or undefined. */
export function mediaLabelProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'is not an object';
  const label = value as Record<string, unknown>;
  if (typeof label.uuid !== 'string' || !isUuid(label.uuid)) return 'has no valid "uuid"';
  if (typeof label.label_text !== 'string' || label.label_text === '') return 'has no "label_text"';
  if (typeof label.ctime !== 'number') return 'has no numeric "ctime"';
  if (label.pool !== undefined && label.pool !== null && typeof label.pool !== 'string') {
    return 'has a "pool" that is not a string';
  }
  return undefined;
}

export function mediaSetLabelProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'is not an object';
  const label = value as Record<string, unknown>;
  if (typeof label.uuid !== 'string' || !isUuid(label.uuid)) return 'has no valid "uuid"';
  if (typeof label.pool !== 'string') return 'has no "pool"';
  if (typeof label.seq_nr !== 'number' || !Number.isSafeInteger(label.seq_nr) || label.seq_nr < 0) {
    return 'has no valid "seq_nr"';
  }
  if (typeof label.ctime !== 'number') return 'has no numeric "ctime"';
  return undefined;
}

/**
 * Reads files 0 and 1 of the loaded tape (§1 File order, §2: reading labels rewinds
 * and leaves the position at file 2). Each must hold only its header and JSON.
 */
export async function readTapeLabels(drive: TapeDrive): Promise<TapeLabels> {
  const label = drive.loadedMedia();
  await drive.rewind();
  const first = await drive.readNextFile();
  if (first.kind !== 'file') {
    throw new TapeRestoreError(
      'BAD_HEADER',
      'the tape has no media label (file 0 is empty or missing)',
      {
        tape: label,
        fileNumber: 0,
      },
    );
  }
  let mediaLabel: MediaLabel;
  try {
    const content = await readTapeContent(first.reader);
    if (content.kind !== 'media-label') {
      throw new TapeRestoreError(
        'UNEXPECTED_FILE',
        `file 0 holds a ${content.kind}, not the media label`,
        first.reader.where('MediaContentHeader'),
      );
    }
    const problem = mediaLabelProblem(content.header);
    if (problem)
      throw new TapeRestoreError(
        'BAD_HEADER',
        `the media label ${problem}`,
        first.reader.where('media label'),
      );
    mediaLabel = content.header as unknown as MediaLabel;
    await expectNoData(first.reader, 'media label');
  } finally {
    await first.reader.close();
  }
  const second = await drive.readNextFile();
  if (second.kind !== 'file') return { mediaLabel, mediaSetLabel: undefined };
  try {
    const content = await readTapeContent(second.reader);
    if (content.kind !== 'media-set-label') {
      throw new TapeRestoreError(
        'UNEXPECTED_FILE',
        `file 1 holds a ${content.kind}, not the media-set label`,
        second.reader.where('MediaContentHeader'),
      );
    }
    const problem = mediaSetLabelProblem(content.header);
    if (problem)
      throw new TapeRestoreError(
        'BAD_HEADER',
        `the media-set label ${problem}`,
        second.reader.where('media-set label'),
      );
    await expectNoData(second.reader, 'media-set label');
    return { mediaLabel, mediaSetLabel: content.header as unknown as MediaSetLabel };
  } finally {
    await second.reader.close();
  }
}

async function expectNoData(
  reader: import('../tape/tape-file-reader.js').TapeFileReader,
  what: string,
) {
  const where = reader.where(what);
  const extra = await reader.skip(1);
  if (extra !== 0) {
    throw new TapeRestoreError('BAD_HEADER', `data follows the ${what} JSON`, where);
  }
  await reader.skipToEnd();
}
