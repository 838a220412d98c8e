import {
  type BlockDevice,
  type LongRunningOptions,
  ProgressTracker,
  throwIfAborted,
} from '@x/blockio';
import { unionSpans } from '../create/ranges.js';
import { VdiBackupError } from '../errors.js';
import { checkObjectSize, DEFAULT_OBJECT_SIZE, MAX_BUFFERED_OBJECT_SIZE } from '../object-size.js';
import { BackupReader, type BackupRecord } from '../stream/backup-reader.js';
import { type BackupOutput, BackupWriter } from '../stream/backup-writer.js';

export interface MergeBackupsOptions extends LongRunningOptions {
  /** Where the merged stream goes: a file (atomic) or a writable stream. */
  output: BackupOutput;
  /** Object size of every input. Default 4 MiB. */
  objectSize?: number | undefined;
  /** Replace an existing output file. Default false. */
  overwrite?: boolean | undefined;
  sync?: boolean | undefined;
}

export interface MergeBackupsResult {
  inputs: number;
  /** Records read from all inputs. */
  recordsIn: number;
  records: number;
  dataBytes: number;
  streamBytes: number;
}

/**
 * One stream equivalent to applying `inputs` in order (the first is applied first): for
 * each object, the ranges any input writes are merged where they overlap or touch, and
 * the bytes of a later input win. All inputs are validated before the output is created;
 * then they are read in one pass, an object at a time, so memory stays at one object
 * however long the chain.
 */
export async function mergeBackups(
  inputs: ReadonlyArray<string | BlockDevice>,
  options: MergeBackupsOptions,
): Promise<MergeBackupsResult> {
  const objectSize = checkObjectSize(
    options.objectSize ?? DEFAULT_OBJECT_SIZE,
    MAX_BUFFERED_OBJECT_SIZE,
  );
  if (inputs.length === 0) {
    throw new VdiBackupError('INVALID_ARGUMENT', 'merging needs at least one stream');
  }
  const readers: BackupReader[] = [];
  try {
    for (const input of inputs) readers.push(await BackupReader.open(input, { objectSize }));
    // A file output that is one of the input files is refused (SAME_FILE) before it is created.
    const files = inputs.filter((input): input is string => typeof input === 'string');
    return await mergeReaders(readers, objectSize, { ...options, files });
  } finally {
    for (const reader of readers) await reader.close().catch(() => {});
  }
}

async function mergeReaders(
  readers: BackupReader[],
  objectSize: number,
  options: MergeBackupsOptions & { files: readonly string[] },
): Promise<MergeBackupsResult> {
  const heads = readers.map((reader) => new RecordCursor(reader));
  for (const head of heads) await head.advance();
  const totalRecords = readers.reduce((sum, reader) => sum + reader.summary.records, 0);
  const progress = new ProgressTracker('merge', totalRecords, options.onProgress, {
    unit: 'items',
  });
  const writer = await BackupWriter.create(options.output, {
    objectSize,
    overwrite: options.overwrite,
    sync: options.sync,
    inputs: options.files,
  });
  const result: MergeBackupsResult = {
    inputs: readers.length,
    recordsIn: 0,
    records: 0,
    dataBytes: 0,
    streamBytes: 0,
  };
  const object = Buffer.alloc(objectSize);
  try {
    for (;;) {
      throwIfAborted(options.signal);
      let idx = Number.POSITIVE_INFINITY;
      for (const head of heads) if (head.current && head.current.idx < idx) idx = head.current.idx;
      if (idx === Number.POSITIVE_INFINITY) break;
      // Inputs in order: a later stream's bytes overwrite an earlier one's.
      const spans: Array<readonly [number, number]> = [];
      for (const head of heads) {
        while (head.current?.idx === idx) {
          const record = head.current;
          await head.reader.readData(record, object.subarray(record.offset));
          spans.push([record.offset, record.offset + record.length]);
          result.recordsIn++;
          progress.advance(1);
          await head.advance();
        }
      }
      for (const [start, end] of unionSpans(spans)) {
        await writer.writeRecord(idx, start, object.subarray(start, end));
        result.records++;
        result.dataBytes += end - start;
      }
    }
    await writer.finish();
  } catch (error) {
    await writer.abort();
    throw error;
  }
  progress.finish();
  result.streamBytes = writer.bytesWritten;
  return result;
}

/** One input's records, one at a time. */
class RecordCursor {
  readonly reader: BackupReader;
  readonly #iterator: AsyncIterator<BackupRecord>;
  current: BackupRecord | undefined;

  constructor(reader: BackupReader) {
    this.reader = reader;
    this.#iterator = reader.records()[Symbol.asyncIterator]();
  }

  async advance(): Promise<void> {
    const step = await this.#iterator.next();
    this.current = step.done ? undefined : step.value;
  }
}
