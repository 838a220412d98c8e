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

/** Records are gathered into writes of this size; larger ones are cut into such writes. */
const STAGING_BYTES = 1 << 20;
/**
 * Record data of at least this size goes to a file in one write of its own, from the
 * caller's buffer: no copy through the staging buffer (create's records are whole
 * changed objects, megabytes each), and one large write instead of several.
 */
const DIRECT_BYTES = 256 << 10;

/**
 * Writes a backup stream as `dog vdi backup` does (8-byte header, records, end record),
 * one record at a time: memory stays at two staging buffers. A file output appears
 * under its name only after `finish()`; `abort()` (or any failure) leaves nothing
 * behind. The records are checked as they come, so a writer never produces a stream
 * its reader refuses.
 *
 * Writes are behind: a full staging buffer is handed to the sink and the writer goes
 * on filling the other one while the sink writes (a file sink on libuv's thread pool),
 * so the caller's reads and compares overlap the output's writes. At most one write
 * is in flight (or a large record's data and the staged bytes before it, at their own
 * offsets); its failure is thrown by the next call.
 */
export class BackupWriter {
  readonly #sink: Sink;
  readonly #validator: RecordValidator;
  #staging: Buffer = Buffer.allocUnsafe(STAGING_BYTES);
  /** The other staging buffer, free again once `#inFlight` settles (file sinks). */
  #spare: Buffer | undefined;
  #inFlight: Promise<void> | undefined;
  /** The write in flight is of a caller's `dataStays` buffer: settled by the caller's next call. */
  #callersInFlight = false;
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
              // On the thread pool: the writes overlap the caller's reading.
              io: 'async',
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

  /**
   * Appends one record: `data` (a multiple of 512 bytes) at `offset` in object `idx`.
   * `data` is copied or written before this returns: the caller may reuse it. With
   * `dataStays`, the caller promises to leave `data` unchanged until its next call
   * (writeRecord, finish) returns: a large record's write may then still be in flight
   * when this returns, so the caller makes the next record while it is written.
   */
  async writeRecord(
    idx: number,
    offset: number,
    data: Uint8Array,
    options: { dataStays?: boolean } = {},
  ): Promise<void> {
    this.#checkOpen();
    if (this.#callersInFlight) await this.#settle();
    this.#validator.check({
      number: this.#records,
      idx,
      offset,
      length: data.byteLength,
      reserved: 0,
      headerOffset: this.bytesWritten,
    });
    this.#records++;
    await this.#append(recordHeader.encode({ idx, offset, length: data.byteLength, reserved: 0 }));
    if (data.byteLength >= DIRECT_BYTES && !this.#sink.keepsChunks) {
      // The staged bytes (this header included), then the data from where it is;
      // written before returning, unless the caller leaves it in place (dataStays).
      await this.#flush();
      // The data's write goes out beside the staged bytes' (a file sink writes each at
      // its own offset): no wait for the small one to come back first.
      this.#bytesWritten += data.byteLength;
      const both = Promise.all([this.#inFlight, this.#sink.write(data)]).then(() => {});
      this.#inFlight = undefined;
      if (!options.dataStays) return both;
      // Rethrown by the next #settle (every later call settles first).
      both.catch(() => {});
      this.#inFlight = both;
      this.#callersInFlight = true;
      return;
    }
    await this.#append(data);
  }

  /** Writes the end record and completes the output (renames a file into place). */
  async finish(): Promise<void> {
    this.#checkOpen();
    await this.#append(
      recordHeader.encode({ idx: BACKUP_END_IDX, offset: 0, length: 0, reserved: 0 }),
    );
    await this.#flush();
    await this.#settle();
    await this.#sink.finish();
    this.#state = 'finished';
  }

  /** Gives up: a file output is removed; a stream is left as it is (its reader sees no end record). */
  async abort(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'aborted';
    // The sink must not be closed under a write still in flight; its failure no longer matters.
    await this.#inFlight?.catch(() => {});
    this.#inFlight = undefined;
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

  /** Copies `bytes` into the staging buffer, handing it to the sink each time it fills. */
  async #append(bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.byteLength) {
      const take = Math.min(bytes.byteLength - done, STAGING_BYTES - this.#staged);
      this.#stage(bytes.subarray(done, done + take));
      done += take;
      if (this.#staged === STAGING_BYTES) await this.#flush();
    }
  }

  /** Hands the staged bytes to the sink and switches to a free staging buffer. */
  async #flush(): Promise<void> {
    if (this.#staged === 0) return;
    const chunk = this.#staging.subarray(0, this.#staged);
    this.#bytesWritten += this.#staged;
    this.#staged = 0;
    // One write in flight: the previous one must be done before its buffer is refilled.
    await this.#settle();
    const write = this.#sink.write(chunk);
    // Rethrown by the next #settle; not an unhandled rejection meanwhile.
    write.catch(() => {});
    this.#inFlight = write;
    if (this.#sink.keepsChunks) {
      this.#staging = Buffer.allocUnsafe(STAGING_BYTES);
    } else {
      const spare = this.#spare ?? Buffer.allocUnsafe(STAGING_BYTES);
      this.#spare = this.#staging;
      this.#staging = spare;
    }
  }

  async #settle(): Promise<void> {
    const write = this.#inFlight;
    this.#inFlight = undefined;
    this.#callersInFlight = false;
    await write;
  }
}

interface Sink {
  readonly name: string;
  /**
   * The sink holds on to written buffers after its write settles (a stream): never
   * reuse one. Otherwise a buffer is free again once its write has settled.
   */
  readonly keepsChunks: boolean;
  write(chunk: Uint8Array): Promise<void>;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

function fileSink(output: OutputFile): Sink {
  let position = 0;
  return {
    name: output.path,
    keepsChunks: false,
    async write(chunk) {
      const at = position;
      position += chunk.byteLength;
      await output.device.write(at, chunk);
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
    async write(chunk) {
      check();
      if (!stream.write(chunk)) await waitForDrain(stream);
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
