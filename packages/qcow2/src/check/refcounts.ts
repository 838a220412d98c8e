import { throwIfAborted } from '@x/blockio';
import type { Qcow2Geometry } from '../format/geometry.js';
import { maxRefcount, readRefcount, readRefcountValue } from '../format/table-entries.js';
import { DENSE_SEGMENT, type RefcountTally } from './refcount-tally.js';
import type { FindingCollector } from './report.js';
import { REFBLOCK_ABSENT, REFBLOCK_INVALID, type StoredRefcounts } from './stored-refcounts.js';

/**
 * One cluster whose stored refcount differs from the references counted. A
 * 64-bit refcount of 2^53 or more arrives as REFCOUNT_SATURATED.
 */
export type MismatchVisitor = (cluster: number, stored: number, counted: number) => void;

export interface CompareOptions {
  tally: RefcountTally;
  stored: StoredRefcounts;
  geometry: Qcow2Geometry;
  /** Clusters of the file; the comparison covers max(this, tally.end). */
  fileClusters: number;
  findings?: FindingCollector | undefined;
  /** Every mismatch (repair uses this; findings keep only a bounded number). */
  onMismatch?: MismatchVisitor | undefined;
  /**
   * Active data clusters mapped with COPIED set / clear: checked against the stored
   * refcounts (COPIED must be set exactly when the refcount is 1).
   */
  copied?: { set: RefcountTally; clear: RefcountTally } | undefined;
  signal?: AbortSignal | undefined;
  onBlock?: (() => void) | undefined;
}

export interface CompareResult {
  leaks: number;
  errors: number;
  overflows: number;
  /** Clusters whose stored refcount could not be read (invalid refcount table entries). */
  unreadable: number;
  /** Referenced clusters with a stored refcount of 0. */
  zeroStored: number;
  /** Referenced clusters no valid refcount block covers: only a rebuild gives them a refcount. */
  uncovered: number;
  /** (highest cluster with a stored or counted reference + 1) × cluster size, as qemu-img reports. */
  imageEndOffset: number;
  /** Active data clusters whose COPIED flag disagrees with refcount == 1. */
  copiedMismatches: number;
}

/**
 * Compares the stored refcount of every cluster with the references counted.
 * Streams refcount blocks through one buffer; where the tally is a run of
 * ones or zeros the block is compared with a template in one memcmp.
 */
export async function compareRefcounts(options: CompareOptions): Promise<CompareResult> {
  const { tally, stored, geometry, findings, onMismatch } = options;
  const perBlock = geometry.refcountBlockEntries;
  const order = geometry.refcountOrder;
  const limit = maxRefcount(order);
  const clusterSize = geometry.clusterSize;
  const total = Math.max(options.fileClusters, tally.end);
  const result: CompareResult = {
    leaks: 0,
    errors: 0,
    overflows: 0,
    unreadable: 0,
    zeroStored: 0,
    uncovered: 0,
    imageEndOffset: 0,
    copiedMismatches: 0,
  };
  let highest = 0;
  const buffer = Buffer.alloc(clusterSize);

  /** The stored value as findings report it: exact, also for 64-bit refcounts above 2^53. */
  const exactAt = (block: Uint8Array | undefined, entry: number, storedValue: number) =>
    block === undefined ? storedValue : readRefcountValue(block, entry, order);

  const mismatch = (
    cluster: number,
    storedValue: number,
    counted: number,
    block?: Uint8Array,
    entry = 0,
  ) => {
    let expected = counted;
    if (counted > limit) {
      result.overflows++;
      findings?.add({
        kind: 'refcount-overflow',
        message: `cluster ${cluster} has ${counted} references, more than ${geometry.refcountBits}-bit refcounts can count (${limit})`,
        structure: 'refcount block',
        cluster,
        hostOffset: cluster * clusterSize,
        refcount: exactAt(block, entry, storedValue),
        reference: counted,
      });
      expected = limit;
    }
    if (storedValue === expected) return;
    onMismatch?.(cluster, storedValue, counted);
    if (storedValue > expected) {
      result.leaks++;
      if (findings === undefined) return;
      if (!findings.wantsDetails('leak')) findings.addCount('leak', 1);
      else {
        const refcount = exactAt(block, entry, storedValue);
        findings.add({
          kind: 'leak',
          message: `Leaked cluster ${cluster} refcount=${refcount} reference=${counted}`,
          structure: 'refcount block',
          tableIndex: Math.floor(cluster / perBlock),
          entryIndex: cluster % perBlock,
          cluster,
          hostOffset: cluster * clusterSize,
          refcount,
          reference: counted,
        });
      }
    } else {
      result.errors++;
      if (storedValue === 0) result.zeroStored++;
      if (findings === undefined) return;
      if (!findings.wantsDetails('refcount-error')) findings.addCount('refcount-error', 1);
      else {
        const refcount = exactAt(block, entry, storedValue);
        findings.add({
          kind: 'refcount-error',
          message: `ERROR cluster ${cluster} refcount=${refcount} reference=${counted}`,
          structure: 'refcount block',
          tableIndex: Math.floor(cluster / perBlock),
          entryIndex: cluster % perBlock,
          cluster,
          hostOffset: cluster * clusterSize,
          refcount,
          reference: counted,
        });
      }
    }
  };

  const copiedMismatch = (cluster: number, storedValue: number | bigint, copied: boolean) => {
    result.copiedMismatches++;
    if (findings === undefined) return;
    if (!findings.wantsDetails('copied')) {
      findings.addCount('copied', 1);
      return;
    }
    findings.add({
      kind: 'copied',
      message: `OFLAG_COPIED data cluster: cluster ${cluster} refcount=${storedValue} but COPIED is ${copied ? 'set' : 'clear'}`,
      structure: 'L2 table',
      owner: 'active',
      cluster,
      hostOffset: cluster * clusterSize,
      refcount: storedValue,
    });
  };
  /** COPIED set needs refcount 1, COPIED clear needs anything else (blocks absent: refcount 0). */
  const checkCopied = (block: Uint8Array | undefined, first: number, count: number) => {
    const copied = options.copied;
    if (copied === undefined) return;
    for (const [flags, wantOne] of [
      [copied.set, true],
      [copied.clear, false],
    ] as const) {
      flags.segments(first, count, (start, length, value) => {
        if (value === 0) return;
        const entry = start - first;
        if (value !== DENSE_SEGMENT && block !== undefined) {
          const uniform = readRefcount(block, entry, order);
          if ((uniform === 1) === wantOne && stored.rangeEquals(block, entry, length, uniform))
            return;
        }
        for (let k = 0; k < length; k++) {
          if (value === DENSE_SEGMENT && flags.get(start + k) === 0) continue;
          const storedValue = block === undefined ? 0 : readRefcount(block, entry + k, order);
          if ((storedValue === 1) !== wantOne)
            copiedMismatch(start + k, exactAt(block, entry + k, storedValue), wantOne);
        }
      });
    }
  };

  for (let index = 0; index * perBlock < total; index++) {
    throwIfAborted(options.signal);
    const first = index * perBlock;
    const count = Math.min(perBlock, total - first);
    const offset = stored.blockOffset(index);
    if (offset === REFBLOCK_INVALID) {
      // Already reported as a bad refcount table entry; its clusters' refcounts are unknown.
      result.unreadable += count;
      tally.segments(first, count, (start, length, value) => {
        if (value === 0) return;
        for (let cluster = start; cluster < start + length; cluster++) {
          if ((value === DENSE_SEGMENT ? tally.get(cluster) : value) > 0) result.uncovered++;
        }
      });
      options.onBlock?.();
      continue;
    }
    if (offset === REFBLOCK_ABSENT) {
      tally.segments(first, count, (start, length, value) => {
        if (value === 0) return;
        for (let cluster = start; cluster < start + length; cluster++) {
          const counted = value === DENSE_SEGMENT ? tally.get(cluster) : value;
          if (counted === 0) continue;
          highest = cluster;
          result.uncovered++;
          mismatch(cluster, 0, counted);
        }
      });
      checkCopied(undefined, first, count);
      options.onBlock?.();
      continue;
    }
    await stored.readBlock(offset, buffer);
    tally.segments(first, count, (start, length, value) => {
      const entry = start - first;
      if (value !== DENSE_SEGMENT && stored.rangeEquals(buffer, entry, length, value)) {
        if (value !== 0) highest = start + length - 1;
        return;
      }
      for (let k = 0; k < length; k++) {
        const storedValue = readRefcount(buffer, entry + k, order);
        const counted = value === DENSE_SEGMENT ? tally.get(start + k) : value;
        if (storedValue !== 0 || counted !== 0) highest = start + k;
        if (storedValue !== counted) mismatch(start + k, storedValue, counted, buffer, entry + k);
      }
    });
    checkCopied(buffer, first, count);
    options.onBlock?.();
  }
  result.imageEndOffset = (highest + 1) * clusterSize;
  return result;
}
