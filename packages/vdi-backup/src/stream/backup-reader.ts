import { type BlockDevice, FileDevice } from '@x/blockio';
import { VdiBackupError } from '../errors.js';
import {
  BACKUP_END_IDX,
  type BackupLayout,
  backupHeader,
  HEADER_SIZE,
  RECORD_HEADER_SIZE,
  recordHeader,
  SEED_HEADER_SIZE,
  seedBackupHeader,
  VDI_BACKUP_FORMAT_VERSION,
  VDI_BACKUP_MAGIC,
} from '../format/stream-format.js';
import { checkObjectSize, DEFAULT_OBJECT_SIZE } from '../object-size.js';
import { type RecordRules, RecordValidator } from './record-rules.js';

/** One record as found in a stream: its header fields and where it lies in the stream. */
export interface BackupRecord {
  /** Position of the record among the stream's records, from 0. */
  readonly number: number;
  readonly idx: number;
  readonly offset: number;
  readonly length: number;
  readonly reserved: number;
  /** Stream offset of the record header. */
  readonly headerOffset: number;
  /** Stream offset of the data (headerOffset + 16). */
  readonly dataOffset: number;
}

export interface ReadBackupOptions {
  /** Object size the records are checked against. Default 4 MiB. */
  objectSize?: number | undefined;
  /** Size of the disk the stream will be applied to: records past it are TOO_LARGE. */
  imageSize?: number | undefined;
}

/** What a whole validated stream holds. */
export interface BackupSummary {
  layout: BackupLayout;
  /** Size of the stream in bytes. */
  streamBytes: number;
  records: number;
  /** Bytes of record data (what a restore writes). */
  dataBytes: number;
  /** Distinct objects with at least one record. */
  objects: number;
  /** Records whose reserved field is not zero (dog ignores it; we warn). */
  reservedNonZero: number;
  /** The smallest disk the stream fits: the end of its last record (bytes). */
  minimumImageSize: number;
}

/**
 * A backup stream in a file (or any BlockDevice): `open` checks the whole stream once —
 * header, every record header, the end marker exactly at the end — before anything uses
 * it, so a restore never starts on a stream that turns out bad half-way. Data is read
 * record by record; the stream is never held in memory.
 */
export class BackupReader {
  readonly device: BlockDevice;
  readonly summary: BackupSummary;
  readonly objectSize: number;
  readonly #owned: boolean;
  readonly #rules: RecordRules;

  private constructor(
    device: BlockDevice,
    owned: boolean,
    rules: RecordRules,
    summary: BackupSummary,
  ) {
    this.device = device;
    this.#owned = owned;
    this.#rules = rules;
    this.summary = summary;
    this.objectSize = rules.objectSize;
  }

  get layout(): BackupLayout {
    return this.summary.layout;
  }

  get name(): string {
    return this.device.name;
  }

  /** Opens and validates `source` (a path, or a device that stays the caller's to close). */
  static async open(
    source: string | BlockDevice,
    options: ReadBackupOptions = {},
  ): Promise<BackupReader> {
    const owned = typeof source === 'string';
    const device = owned ? await FileDevice.open(source) : source;
    try {
      const rules: RecordRules = {
        objectSize: checkObjectSize(options.objectSize ?? DEFAULT_OBJECT_SIZE),
        imageSize: options.imageSize,
      };
      const summary = await detectAndValidate(device, rules);
      return new BackupReader(device, owned, rules, summary);
    } catch (error) {
      if (owned) await device.close().catch(() => {});
      throw error;
    }
  }

  /** The records in stream order (headers only; read data with `readData`). */
  async *records(): AsyncIterable<BackupRecord> {
    yield* walkRecords(
      this.device,
      this.summary.layout,
      new RecordValidator(this.#rules, this.name),
    );
  }

  /** The data of `record` (a new buffer, or `into` when given and large enough). */
  async readData(record: BackupRecord, into?: Buffer): Promise<Buffer> {
    const target = into ? into.subarray(0, record.length) : Buffer.allocUnsafe(record.length);
    return this.device.read(record.dataOffset, target);
  }

  async close(): Promise<void> {
    if (this.#owned) await this.device.close();
  }
}

async function detectAndValidate(device: BlockDevice, rules: RecordRules): Promise<BackupSummary> {
  const where = { path: device.name };
  if (device.size < HEADER_SIZE) {
    throw new VdiBackupError(
      'TRUNCATED',
      `the stream is ${device.size} bytes, shorter than the 8-byte header`,
      { ...where, offset: 0, structure: backupHeader.name },
    );
  }
  const header = backupHeader.decode(await device.read(0, HEADER_SIZE));
  if (header.magic !== VDI_BACKUP_MAGIC) {
    throw new VdiBackupError(
      'BAD_MAGIC',
      `not a vdi backup stream: magic is 0x${header.magic.toString(16)}, expected 0x${VDI_BACKUP_MAGIC.toString(16)}`,
      { ...where, offset: 4, structure: backupHeader.name },
    );
  }
  if (header.version !== VDI_BACKUP_FORMAT_VERSION) {
    throw new VdiBackupError(
      'BAD_VERSION',
      `unsupported backup format version ${header.version} (only ${VDI_BACKUP_FORMAT_VERSION} exists)`,
      { ...where, offset: 0, structure: backupHeader.name },
    );
  }
  // Both layouts share the first 8 bytes; byte 8 onwards decides (formats/sheepdog.md
  // §1.1): the shipped stream ends exactly with the end record, a 2012 stream holds
  // exactly its counted records up to the end. One must parse and the other must not.
  const shipped = await tryLayout(device, 'dog', rules);
  const seed = await trySeedLayout(device, rules);
  if (shipped.summary && seed.summary) {
    throw new VdiBackupError(
      'BAD_MAGIC',
      'the stream parses both as a dog stream and as a 2012 stream; refusing to guess',
      { ...where, offset: 8, structure: seedBackupHeader.name },
    );
  }
  if (shipped.summary) return shipped.summary;
  if (seed.summary) return seed.summary;
  // Neither parses. When the shipped reading fails at its first record but the 2012
  // reading got through some of its records, the stream is most likely a damaged 2012 one.
  throw seed.error !== undefined && (seed.records ?? 0) > 0 && shipped.records === 0
    ? seed.error
    : shipped.error;
}

async function trySeedLayout(device: BlockDevice, rules: RecordRules): Promise<LayoutAttempt> {
  if (device.size < SEED_HEADER_SIZE) return {};
  const seed = seedBackupHeader.decode(await device.read(0, SEED_HEADER_SIZE));
  if (seed.reserved !== 0) return {};
  return tryLayout(device, 'seed-2012', rules);
}

async function tryLayout(
  device: BlockDevice,
  layout: BackupLayout,
  rules: RecordRules,
): Promise<LayoutAttempt> {
  const validator = new RecordValidator(rules, device.name);
  try {
    for await (const _record of walkRecords(device, layout, validator)) {
      // walkRecords validates as it goes
    }
    return { summary: { layout, ...validator.totals(device.size) } };
  } catch (error) {
    if (error instanceof VdiBackupError) {
      return { error, records: validator.totals(device.size).records };
    }
    throw error;
  }
}

interface LayoutAttempt {
  summary?: BackupSummary;
  error?: unknown;
  /** Records that passed before the error. */
  records?: number;
}

/**
 * Walks the record headers of `layout`, validating each (and, at the end, the end
 * marker or the count), and yields them. Throws typed errors naming the stream offset.
 */
async function* walkRecords(
  device: BlockDevice,
  layout: BackupLayout,
  validator: RecordValidator,
): AsyncIterable<BackupRecord> {
  const size = device.size;
  const where = (offset: number, structure: string) => ({ path: device.name, offset, structure });
  let position = layout === 'dog' ? HEADER_SIZE : SEED_HEADER_SIZE;
  const expected =
    layout === 'seed-2012'
      ? seedBackupHeader.decode(await device.read(0, SEED_HEADER_SIZE)).nrObjBackups
      : undefined;
  const headerBytes = Buffer.alloc(RECORD_HEADER_SIZE);
  for (let number = 0; ; number++) {
    if (expected !== undefined && number === expected) {
      if (position !== size) {
        throw new VdiBackupError(
          'TRAILING_DATA',
          `${size - position} bytes follow the ${expected} records the 2012 header counts`,
          where(position, seedBackupHeader.name),
        );
      }
      return;
    }
    if (position + RECORD_HEADER_SIZE > size) {
      throw new VdiBackupError(
        'TRUNCATED',
        position === size
          ? layout === 'dog'
            ? 'the stream ends without the end record (idx 0xffffffff): it was cut short'
            : `the stream ends after ${number} of the ${expected} records its header counts`
          : `the stream ends inside the header of record ${number} (${size - position} of 16 bytes)`,
        where(position, `record ${number} header`),
      );
    }
    const fields = recordHeader.decode(await device.read(position, headerBytes));
    if (layout === 'dog' && fields.idx === BACKUP_END_IDX) {
      if (fields.offset !== 0 || fields.length !== 0 || fields.reserved !== 0) {
        throw new VdiBackupError(
          'BAD_RECORD',
          `the end record must have offset, length and reserved 0, found ${fields.offset}, ${fields.length}, ${fields.reserved}`,
          where(position, 'end record'),
        );
      }
      const end = position + RECORD_HEADER_SIZE;
      if (end !== size) {
        throw new VdiBackupError(
          'TRAILING_DATA',
          `${size - end} bytes follow the end record`,
          where(end, 'end record'),
        );
      }
      return;
    }
    const record: BackupRecord = {
      number,
      ...fields,
      headerOffset: position,
      dataOffset: position + RECORD_HEADER_SIZE,
    };
    validator.check(record);
    const dataEnd = record.dataOffset + record.length;
    if (dataEnd > size) {
      throw new VdiBackupError(
        'TRUNCATED',
        `the stream ends inside the data of record ${number}: ${size - record.dataOffset} of ${record.length} bytes`,
        where(size, validator.describe(record)),
      );
    }
    yield record;
    position = dataEnd;
  }
}
