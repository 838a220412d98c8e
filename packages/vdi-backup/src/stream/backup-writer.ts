import {
  BlockIoError,
  createOutputFile,
  fromSystemError,
  type OutputFile,
  waitForDrain,
} from '@x/blockio';
import {
  BACKUP_END_IDX,
  backupHeader,
  recordHeader,
  VDI_BACKUP_FORMAT_VERSION,
  VDI_BACKUP_MAGIC,
} from '../format/stream-format.js';
import { checkObjectSize, DEFAULT_OBJECT_SIZE } from '../object-size.js';
import { RecordValidator } from './record-rules.js';

/** Where a stream goes: a file (created atomically) or a writable stream such as stdout. */
export type BackupOutput = string | NodeJS.WritableStream;

export interface BackupWriterOptions {
  /** Records are checked against this object size. Default 4 MiB. */
  objectSize?: number | undefined;
  /** Replace an existing output file. Default false. */
  overwrite?: boolean | undefined;
  /** fsync a file output before renaming it into place. Default true. */
  sync?: boolean | undefined;
  /** Files the stream is made from: a file output that is one of them is refused (`SAME_FILE`). */
  inputs?: readonly string[] | undefined;
}

/** Small records are gathered into writes of this size. */
const STAGING_BYTES = 1 << 20;

/**
 * Writes a backup stream as `dog vdi backup` does (8-byte header, records, end record),
 * one record at a time: memory stays at one staging buffer. A file output appears under
 * its name only after `finish()`; `abort()` (or any failure) leaves nothing behind. The
 * records are checked as they come, so a writer never produces a stream its reader refuses.
 */
export class BackupWriter {
  readonly #sink: Sink;
  readonly #validator: RecordValidator;
  #staging = Buffer.allocUnsafe(STAGING_BYTES);
  #staged = 0;
  #records = 0;
  #bytesWritten = 0;
  #state: 'open' | 'finished' | 'aborted' = 'open';

  private constructor(sink: Sink, objectSize: number) {
    this.#sink = sink;
    this.#validator = new RecordValidator({ objectSize }, sink.name);
  }

  static async create(
    output: BackupOutput,
    options: BackupWriterOptions = {},
  ): Promise<BackupWriter> {
    const objectSize = checkObjectSize(options.objectSize ?? DEFAULT_OBJECT_SIZE);
    const sink =
      typeof output === 'string'
        ? fileSink(
            // Created 0600 (createOutputFile's default): a backup holds the disk's data.
            await createOutputFile(output, {
              overwrite: options.overwrite ?? false,
              sync: options.sync ?? true,
              inputs: options.inputs ?? [],
            }),
          )
        : streamSink(output);
    const writer = new BackupWriter(sink, objectSize);
    writer.#stage(
      backupHeader.encode({ version: VDI_BACKUP_FORMAT_VERSION, magic: VDI_BACKUP_MAGIC }),
    );
    return writer;
  }

  /** Records written so far. */
  get records(): number {
    return this.#records;
  }

  /** Stream bytes produced so far (header and end record included once finished). */
  get bytesWritten(): number {
    return this.#bytesWritten + this.#staged;
  }

  /** Appends one record: `data` (a multiple of 512 bytes) at `offset` in object `idx`. */
  async writeRecord(idx: number, offset: number, data: Uint8Array): Promise<void> {
    this.#checkOpen();
    this.#validator.check({
      number: this.#records,
      idx,
      offset,
      length: data.byteLength,
      reserved: 0,
      headerOffset: this.bytesWritten,
    });
    this.#stage(recordHeader.encode({ idx, offset, length: data.byteLength, reserved: 0 }));
    this.#records++;
    if (this.#staged + data.byteLength <= STAGING_BYTES) {
      this.#stage(data);
      if (this.#staged === STAGING_BYTES) await this.#flush();
      return;
    }
    await this.#flush();
    if (data.byteLength < STAGING_BYTES) {
      this.#stage(data);
      return;
    }
    await this.#sink.write(data, true);
    this.#bytesWritten += data.byteLength;
  }

  /** Writes the end record and completes the output (renames a file into place). */
  async finish(): Promise<void> {
    this.#checkOpen();
    this.#stage(recordHeader.encode({ idx: BACKUP_END_IDX, offset: 0, length: 0, reserved: 0 }));
    await this.#flush();
    await this.#sink.finish();
    this.#state = 'finished';
  }

  /** Gives up: a file output is removed; a stream is left as it is (its reader sees no end record). */
  async abort(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'aborted';
    await this.#sink.abort();
  }

  #checkOpen(): void {
    if (this.#state !== 'open') {
      throw new BlockIoError('INVALID_ARGUMENT', `the backup writer was already ${this.#state}`, {
        path: this.#sink.name,
      });
    }
  }

  #stage(bytes: Uint8Array): void {
    this.#staging.set(bytes, this.#staged);
    this.#staged += bytes.byteLength;
  }

  async #flush(): Promise<void> {
    if (this.#staged === 0) return;
    const chunk = this.#staging.subarray(0, this.#staged);
    this.#bytesWritten += this.#staged;
    this.#staged = 0;
    if (this.#sink.keepsChunks) this.#staging = Buffer.allocUnsafe(STAGING_BYTES);
    await this.#sink.write(chunk, false);
  }
}

interface Sink {
  readonly name: string;
  /** The sink holds on to written buffers (a stream): never reuse one after writing it. */
  readonly keepsChunks: boolean;
  /** `borrowed`: the caller will reuse `chunk`, copy it if it must be kept. */
  write(chunk: Uint8Array, borrowed: boolean): Promise<void>;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

function fileSink(output: OutputFile): Sink {
  let position = 0;
  return {
    name: output.path,
    keepsChunks: false,
    async write(chunk) {
      await output.device.write(position, chunk);
      position += chunk.byteLength;
    },
    finish: () => output.commit(),
    abort: () => output.abort(),
  };
}

function streamSink(stream: NodeJS.WritableStream): Sink {
  const name = stream === process.stdout ? 'standard output' : 'output stream';
  let failure: Error | undefined;
  const onError = (error: Error) => {
    failure ??= error;
  };
  stream.on('error', onError);
  const check = () => {
    if (failure) {
      throw fromSystemError(failure, 'write the backup stream', { path: name });
    }
  };
  return {
    name,
    keepsChunks: true,
    async write(chunk, borrowed) {
      check();
      // A stream keeps the buffer until it is flushed: hand it a copy of one we reuse.
      const owned = borrowed ? Buffer.from(chunk) : chunk;
      if (!stream.write(owned)) await waitForDrain(stream);
      check();
    },
    async finish() {
      check();
      stream.off('error', onError);
    },
    async abort() {
      stream.off('error', onError);
    },
  };
}
