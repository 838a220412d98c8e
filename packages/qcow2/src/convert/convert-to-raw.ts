import {
  type BlockDevice,
  type CopyResult,
  copy,
  createOutputFile,
  type FileDevice,
  type LongRunningOptions,
} from '@x/blockio';
import { checkInputUnchanged, type OpenInputOptions, openInput } from './open-input.js';

export interface ConvertToRawOptions extends OpenInputOptions, LongRunningOptions {
  /** Replace an existing output file. Default false. */
  overwrite?: boolean | undefined;
  /** Bytes per read request. Default 2 MiB. */
  blockSize?: number | undefined;
  /** Requests in flight. Default 4. */
  concurrency?: number | undefined;
}

export interface ConvertResult extends CopyResult {
  inputFormat: 'qcow2' | 'raw';
  virtualSize: number;
}

/**
 * `qemu-img convert -O raw`: writes every guest byte of `input` (qcow2 or raw,
 * optionally one of its snapshots) to a sparse raw `output`. Only the extents
 * that hold data are read; zero blocks become holes. The output appears under
 * its name only when complete (`.partial` + rename); on error or abort nothing
 * is left behind.
 */
export async function convertToRaw(
  input: string,
  output: string,
  options: ConvertToRawOptions = {},
): Promise<ConvertResult> {
  const { device, format } = await openInput(input, options);
  try {
    const result = await copyToRawFile(device, output, options);
    return { ...result, inputFormat: format, virtualSize: device.size };
  } finally {
    await device.close();
  }
}

/** Bytes of progress between background syncs of the output. */
const SYNC_INTERVAL = 256 << 20;

/**
 * Starts an fdatasync of the output every SYNC_INTERVAL of progress, one at a
 * time and without waiting for it: the disk writes the output while we copy,
 * so the fsync before the final rename (which the output must have) finds
 * little left to do instead of the whole file.
 */
class BackgroundSync {
  readonly #device: FileDevice;
  #lastSyncAt = 0;
  #pending: Promise<void> | undefined;
  #failure: unknown;

  constructor(device: FileDevice) {
    this.#device = device;
  }

  progress(done: number): void {
    if (this.#pending || done - this.#lastSyncAt < SYNC_INTERVAL) return;
    this.#lastSyncAt = done;
    this.#pending = this.#device.handle
      .datasync()
      .catch((error: unknown) => {
        this.#failure ??= error;
      })
      .finally(() => {
        this.#pending = undefined;
      });
  }

  async settle(): Promise<void> {
    await this.#pending;
    if (this.#failure !== undefined) throw this.#failure;
  }
}

/** Copies an opened device to a new sparse raw file (the part convert shares with others). */
export async function copyToRawFile(
  source: BlockDevice,
  output: string,
  options: Omit<ConvertToRawOptions, keyof OpenInputOptions> = {},
): Promise<CopyResult> {
  const target = await createOutputFile(output, {
    size: source.size,
    overwrite: options.overwrite ?? false,
  });
  const syncer = new BackgroundSync(target.device);
  try {
    const result = await copy(source, target.device, {
      signal: options.signal,
      onProgress: (event) => {
        syncer.progress(event.done);
        options.onProgress?.(event);
      },
      blockSize: options.blockSize ?? 2 << 20,
      concurrency: options.concurrency ?? 4,
      phase: 'convert',
    });
    await syncer.settle();
    await checkInputUnchanged(source);
    await target.commit();
    return result;
  } catch (error) {
    await syncer.settle().catch(() => {});
    await target.abort();
    throw error;
  }
}
