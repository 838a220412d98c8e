import {
  type BlockDevice,
  type LongRunningOptions,
  ProgressTracker,
  throwIfAborted,
} from '@x/blockio';
import { ChainBlockStatus, STATUS_ALLOCATED, STATUS_ZERO } from '../map/block-status.js';

export interface CompareOptions extends LongRunningOptions {
  /**
   * qemu-img compare -s: the sizes must be equal and the block status of every
   * range the same in both (see compareDevices), not only the bytes.
   */
  strict?: boolean | undefined;
}

export interface CompareResult {
  identical: boolean;
  /**
   * Where the first difference is, as qemu-img compare reports it: the start of
   * the first 512-byte sector that differs (or, in strict mode, the offset at
   * which the block status answers first differ). Undefined when identical, or for a strict
   * size mismatch.
   */
  offset: number | undefined;
  /** Why they differ: content, allocation (strict) or size (strict). */
  reason: 'content' | 'allocation' | 'size' | undefined;
  /** The sizes differ (in non-strict mode the larger one reads as zeros past the smaller). */
  sizeMismatch: boolean;
}

/** Bytes compared at a time (qemu-img's IO_BUF_SIZE). */
const CHUNK = 2 << 20;
const SECTOR = 512;

/**
 * Compares the guest bytes of two devices as `qemu-img compare` (7.2's
 * img_compare) does, step for step: at each offset both chains are asked
 * their block status (bdrv_block_status_above), and the step is the shorter
 * answer. Where both read as zero nothing is read; where both or neither are
 * allocated the bytes are compared (both allocated) or skipped; where only
 * one is, its bytes must be zeros. The first difference is reported at the
 * start of its 512-byte sector. Images of different sizes are equal when the
 * larger one holds only zeros past the end of the smaller.
 *
 * Strict mode (-s) first compares the two status answers themselves — data,
 * zero, allocated, whether a host offset is known, and whether the answer
 * reaches the end of the image — so a raw file's hole differs from an
 * unallocated or zero qcow2 cluster, a compressed cluster from a plain one,
 * and two images with the same clusters in a different host order can
 * differ at offset 0 (the answer of the contiguous one reaches the end):
 * what qemu-img reports.
 */
export async function compareDevices(
  a: BlockDevice,
  b: BlockDevice,
  options: CompareOptions = {},
): Promise<CompareResult> {
  const strict = options.strict ?? false;
  const sizeMismatch = a.size !== b.size;
  if (strict && sizeMismatch) {
    return { identical: false, offset: undefined, reason: 'size', sizeMismatch };
  }
  const common = Math.min(a.size, b.size);
  const total = Math.max(a.size, b.size);
  const tracker = new ProgressTracker('compare', total, options.onProgress);
  const differ = (offset: number, reason: 'content' | 'allocation'): CompareResult => ({
    identical: false,
    offset,
    reason,
    sizeMismatch,
  });
  const chainA = new ChainBlockStatus(a);
  const chainB = new ChainBlockStatus(b);

  for (let offset = 0; offset < common; ) {
    throwIfAborted(options.signal, a.name);
    const statusA = await chainA.statusAbove(offset, a.size - offset);
    const statusB = await chainB.statusAbove(offset, b.size - offset);
    let chunk = Math.min(statusA.length, statusB.length);
    if (strict && statusA.flags !== statusB.flags) return differ(offset, 'allocation');
    const allocatedA = (statusA.flags & STATUS_ALLOCATED) !== 0;
    const allocatedB = (statusB.flags & STATUS_ALLOCATED) !== 0;
    if (statusA.flags & statusB.flags & STATUS_ZERO) {
      // Both read as zeros: nothing to read.
    } else if (allocatedA === allocatedB) {
      if (allocatedA) {
        chunk = Math.min(chunk, CHUNK);
        const found = await firstDifference(a, b, { offset, length: chunk });
        if (found !== undefined) return differ(found, 'content');
      }
    } else {
      chunk = Math.min(chunk, CHUNK);
      const found = await firstDifference(allocatedA ? a : undefined, allocatedA ? undefined : b, {
        offset,
        length: chunk,
      });
      if (found !== undefined) return differ(found, 'content');
    }
    offset += chunk;
    tracker.set(offset);
  }
  if (sizeMismatch) {
    const larger = a.size > b.size ? a : b;
    const chain = larger === a ? chainA : chainB;
    for (let offset = common; offset < total; ) {
      throwIfAborted(options.signal, larger.name);
      const status = await chain.statusAbove(offset, total - offset);
      let chunk = status.length;
      if (status.flags & STATUS_ALLOCATED && !(status.flags & STATUS_ZERO)) {
        chunk = Math.min(chunk, CHUNK);
        const found = await firstDifference(larger, undefined, { offset, length: chunk });
        if (found !== undefined) return differ(found, 'content');
      }
      offset += chunk;
      tracker.set(offset);
    }
  }
  tracker.set(total);
  tracker.finish();
  return { identical: true, offset: undefined, reason: undefined, sizeMismatch };
}

/**
 * The first differing sector of a range where `a` and/or `b` hold data; a
 * missing side reads as zeros there.
 */
async function firstDifference(
  a: BlockDevice | undefined,
  b: BlockDevice | undefined,
  range: { offset: number; length: number },
): Promise<number | undefined> {
  const end = range.offset + range.length;
  for (let at = range.offset; at < end; at += CHUNK) {
    const length = Math.min(CHUNK, end - at);
    const bytesA = a ? await a.read(at, length) : undefined;
    const bytesB = b ? await b.read(at, length) : undefined;
    const index = firstDifferentByte(bytesA, bytesB, length);
    if (index >= 0) return at + index - (index % SECTOR);
  }
  return undefined;
}

function firstDifferentByte(a: Buffer | undefined, b: Buffer | undefined, length: number): number {
  if (a && b) {
    if (a.equals(b)) return -1;
    for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i;
    return -1;
  }
  const data = (a ?? b) as Buffer;
  return data.findIndex((byte) => byte !== 0);
}
