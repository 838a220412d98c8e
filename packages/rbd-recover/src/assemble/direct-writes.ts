import { constants, writeSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';

/**
 * O_DIRECT writes for the transfer threads. On the benchmark VM (Firecracker, ext4,
 * kernel 6.18) the kernel's copy into the page cache was the largest single cost of a
 * transfer: 28% of recover's CPU in `copy_folio_from_iter_atomic` at about 1 GB/s.
 * Three `dd bs=1M` writers of 1.3 GiB each took 11.0 s and 5.3 s of system time
 * buffered, 4.0 s and 0.5 s with oflag=direct. The output is written once and read
 * back at most once (QCOW2 output), so the page cache gains nothing from it.
 *
 * Offset, length and memory must be aligned (to the logical block size; 4 KiB covers
 * every Linux file system); what is not — an object's tail, a region cut short — goes
 * through the ordinary descriptor. Where the file system refuses O_DIRECT (open or
 * write fails with EINVAL), everything goes through the ordinary descriptor.
 */
export const DIRECT_ALIGNMENT = 4096;

/** `path` opened for O_DIRECT writes, or undefined where that is not possible. */
export async function openDirect(path: string): Promise<FileHandle | undefined> {
  const flag = (constants as { O_DIRECT?: number }).O_DIRECT;
  if (flag === undefined) return undefined;
  try {
    return await open(path, constants.O_WRONLY | flag);
  } catch {
    return undefined;
  }
}

/** Closes what openDirect opened (each once: the entries are cleared). */
export async function closeDirect(handles: Array<FileHandle | undefined>): Promise<void> {
  for (let k = 0; k < handles.length; k++) {
    const handle = handles[k];
    handles[k] = undefined;
    await handle?.close().catch(() => {});
  }
}

/** Positional writes, the aligned part through an O_DIRECT descriptor when there is one. */
export class DirectWriter {
  /** Bytes written through O_DIRECT descriptors. */
  directBytes = 0;
  /** False once a file system refused a direct write (then none is tried again). */
  #usable = true;

  /**
   * Writes all of `data` at `offset`. `aligned`: `data` starts on a page in memory (an
   * `allocateAligned` buffer at offset 0), which JavaScript cannot check.
   */
  write(
    fd: number,
    directFd: number | undefined,
    data: Uint8Array,
    offset: number,
    aligned: boolean,
  ): void {
    let done = 0;
    if (
      directFd !== undefined &&
      this.#usable &&
      aligned &&
      data.byteOffset % DIRECT_ALIGNMENT === 0 &&
      offset % DIRECT_ALIGNMENT === 0
    ) {
      const whole = data.byteLength - (data.byteLength % DIRECT_ALIGNMENT);
      try {
        while (done < whole) {
          const written = writeSync(directFd, data, done, whole - done, offset + done);
          done += written;
          // A short write that ends off alignment: the rest goes the ordinary way.
          if (written === 0 || done % DIRECT_ALIGNMENT !== 0) break;
        }
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code !== 'EINVAL' && code !== 'EOPNOTSUPP' && code !== 'ENOTSUP') throw error;
        this.#usable = false;
      }
      this.directBytes += done;
    }
    while (done < data.byteLength) {
      done += writeSync(fd, data, done, data.byteLength - done, offset + done);
    }
  }
}
