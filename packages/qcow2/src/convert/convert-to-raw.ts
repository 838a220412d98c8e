import {
  type BlockDevice,
  type CopyResult,
  copy,
  createOutputFile,
  type FileDevice,
  type LongRunningOptions,
  refuseSameFile,
} from '@x/blockio';
import { Qcow2Image } from '../image/qcow2-image.js';
import { type ConvertToRawResult, salvageReport } from './convert-result.js';
import { copyQcow2Clusters } from './copy-clusters.js';
import { copyToBlockDevice, isBlockDevicePath } from './copy-to-device.js';
import { checkInputUnchanged, type OpenInputOptions, openInput } from './open-input.js';

export interface ConvertToRawOptions extends OpenInputOptions, LongRunningOptions {
  /** Replace an existing output file. Default false. */
  overwrite?: boolean | undefined;
  /**
   * fsync the output before moving it into place (default true). Off, a crash
   * soon after the command returns can leave a file with missing data under
   * the output's name, which qemu-img convert's output can too.
   */
  sync?: boolean | undefined;
  /** Bytes per read request (raw input or a backing chain). Default 1 MiB. */
  blockSize?: number | undefined;
  /** Requests in flight (raw input or a backing chain). Default 4. */
  concurrency?: number | undefined;
  /**
   * How the input is read. Default `async` here: reads of several runs in flight
   * on libuv's pool, beside the writes (see copyToRawFile).
   */
  io?: 'sync' | 'async' | undefined;
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
): Promise<ConvertToRawResult> {
  // Replacing the input with its own conversion would destroy it (its snapshots, …).
  await refuseSameFile(output, [input]);
  // Reads on libuv's pool too: several are in flight beside the writes (see copyToRawFile).
  const { device, format, salvage } = await openInput(input, {
    ...options,
    io: options.io ?? 'async',
  });
  try {
    // A block device is written in place (no temporary name to rename).
    const { bytesRead, bytesWritten, bytesZero } = (await isBlockDevicePath(output))
      ? await copyToBlockDevice(device, output, options)
      : await copyToRawFile(device, output, options);
    const salvaged = salvageReport(salvage);
    return {
      inputFormat: format,
      virtualSize: device.size,
      bytesRead,
      bytesWritten,
      bytesZero,
      ...(salvaged ? { salvaged } : {}),
    };
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

  readonly #enabled: boolean;

  constructor(device: FileDevice, enabled: boolean) {
    this.#device = device;
    this.#enabled = enabled;
  }

  progress(done: number): void {
    if (!this.#enabled || this.#pending || done - this.#lastSyncAt < SYNC_INTERVAL) return;
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
  const sync = options.sync ?? true;
  const target = await createOutputFile(output, {
    size: source.size,
    overwrite: options.overwrite ?? false,
    sync,
    // Writes on libuv's pool, behind the reads on this thread (WriteBehind): the
    // kernel's copy into the page cache is most of a convert's CPU, and on its own
    // thread it runs beside the reads on the second core. (Earlier, with one write
    // awaited at a time, sync writes were cheaper: 0.37 s against 0.42 s for 1 GiB.)
    io: 'async',
  });
  const syncer = new BackgroundSync(target.device, sync);
  const onProgress: LongRunningOptions['onProgress'] = (event) => {
    syncer.progress(event.done);
    options.onProgress?.(event);
  };
  try {
    // A qcow2 image without a backing file: one read and one write per host run,
    // straight from the L2 tables (compressed runs are inflated concurrently by the
    // image's read path). Anything else reads through the device.
    const result =
      source instanceof Qcow2Image && !source.backing
        ? await copyQcow2Clusters(source, target.device, { signal: options.signal, onProgress })
        : await copy(source, target.device, {
            signal: options.signal,
            onProgress,
            // 1 MiB blocks, 4 in flight keep the inflating pool threads of a
            // compressed backing chain busy; 2 MiB blocks doubled the CPU time
            // (buffers no longer stay in cache).
            blockSize: options.blockSize ?? 1 << 20,
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
