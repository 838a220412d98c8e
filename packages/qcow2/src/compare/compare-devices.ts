import {
  type BlockDevice,
  deviceExtents,
  type Extent,
  type LongRunningOptions,
  ProgressTracker,
  throwIfAborted,
} from '@x/blockio';

export interface CompareOptions extends LongRunningOptions {
  /**
   * qemu-img compare -s: the sizes must be equal and every range must have the
   * same kind in both (data, zero, unallocated), not only the same bytes.
   */
  strict?: boolean | undefined;
}

export interface CompareResult {
  identical: boolean;
  /**
   * Where the first difference is, as qemu-img compare reports it: the start of
   * the first 512-byte sector that differs (or, in strict mode, of the first
   * range whose allocation differs). Undefined when identical, or for a strict
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
 * Compares the guest bytes of two devices as `qemu-img compare` does: ranges
 * that read as zero in both are skipped, data is compared (or checked to be
 * all zeros where the other reads as zero), and the first difference is
 * reported at the start of its 512-byte sector. Images of different sizes are
 * equal when the larger one holds only zeros past the end of the smaller.
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
  const progress = (done: number) => tracker.set(done);
  const differ = (offset: number, reason: 'content' | 'allocation'): CompareResult => ({
    identical: false,
    offset,
    reason,
    sizeMismatch,
  });

  for await (const piece of pairedExtents(a, b, common)) {
    throwIfAborted(options.signal, a.name);
    if (strict && piece.kindA !== piece.kindB) return differ(piece.offset, 'allocation');
    const dataA = piece.kindA === 'data';
    const dataB = piece.kindB === 'data';
    if (dataA || dataB) {
      const found = await firstDifference(dataA ? a : undefined, dataB ? b : undefined, piece);
      if (found !== undefined) return differ(found, 'content');
    }
    progress(piece.offset + piece.length);
  }
  if (sizeMismatch) {
    const larger = a.size > b.size ? a : b;
    for await (const extent of deviceExtents(larger, { offset: common, length: total - common })) {
      throwIfAborted(options.signal, larger.name);
      if (extent.kind !== 'data') continue;
      const found = await firstDifference(larger, undefined, extent);
      if (found !== undefined) return differ(found, 'content');
      progress(extent.offset + extent.length);
    }
  }
  tracker.set(total);
  tracker.finish();
  return { identical: true, offset: undefined, reason: undefined, sizeMismatch };
}

interface PairedPiece {
  offset: number;
  length: number;
  kindA: Extent['kind'];
  kindB: Extent['kind'];
}

/** The extents of both devices over [0, end), cut where either changes kind. */
async function* pairedExtents(
  a: BlockDevice,
  b: BlockDevice,
  end: number,
): AsyncIterable<PairedPiece> {
  if (end === 0) return;
  const iteratorA = deviceExtents(a, { offset: 0, length: end })[Symbol.asyncIterator]();
  const iteratorB = deviceExtents(b, { offset: 0, length: end })[Symbol.asyncIterator]();
  let extentA = (await iteratorA.next()).value as Extent | undefined;
  let extentB = (await iteratorB.next()).value as Extent | undefined;
  let position = 0;
  while (position < end && extentA && extentB) {
    const pieceEnd = Math.min(extentA.offset + extentA.length, extentB.offset + extentB.length);
    yield {
      offset: position,
      length: pieceEnd - position,
      kindA: extentA.kind,
      kindB: extentB.kind,
    };
    position = pieceEnd;
    if (extentA.offset + extentA.length <= position) {
      extentA = (await iteratorA.next()).value as Extent | undefined;
    }
    if (extentB.offset + extentB.length <= position) {
      extentB = (await iteratorB.next()).value as Extent | undefined;
    }
  }
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
