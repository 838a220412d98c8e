/**
 * What `check` finds and how it is reported: finding kinds, the exit code each
 * one implies (the qcow2-dump-style scheme of the issue), and a collector that
 * counts everything but keeps a bounded number of detailed findings per kind so
 * a destroyed 1 TiB image cannot make the report itself unbounded.
 */

/** Exit codes of `qcow2 check`. The highest applicable code wins. */
export const CHECK_EXIT_CLEAN = 0;
export const CHECK_EXIT_LEAKS = 1;
export const CHECK_EXIT_COPIED = 2;
export const CHECK_EXIT_FLAGGED = 3;
export const CHECK_EXIT_REFCOUNT = 4;
export const CHECK_EXIT_SNAPSHOT_TABLE = 5;
export const CHECK_EXIT_CORRUPT = 6;
export const CHECK_EXIT_COULD_NOT_RUN = 8;

/** Every kind of problem check reports, with the exit code it implies. */
export const FINDING_EXIT_CODES = {
  /**
   * What QEMU ignores or tolerates (bit 0 of an extended L2 entry, COPIED on an
   * entry without a host cluster, empty or duplicate snapshot ids): reported, but not an
   * error, as QEMU does not treat them as one.
   */
  ignored: CHECK_EXIT_CLEAN,
  /** Stored refcount above the number of references: wasted space, no harm to data. */
  leak: CHECK_EXIT_LEAKS,
  /** COPIED flag of an active L1/L2 entry disagrees with refcount == 1 (or is set on a compressed cluster). */
  copied: CHECK_EXIT_COPIED,
  /** The header's corrupt bit is set. */
  'corrupt-bit': CHECK_EXIT_FLAGGED,
  /** The header's dirty bit is set (lazy refcounts not yet written back). */
  'dirty-bit': CHECK_EXIT_FLAGGED,
  /** Stored refcount below the number of references: a write may reuse a cluster in use. */
  'refcount-error': CHECK_EXIT_REFCOUNT,
  /** More references than refcount_bits can count. */
  'refcount-overflow': CHECK_EXIT_REFCOUNT,
  /** A refcount table entry that is unaligned, has reserved bits or points past the end of the file. */
  'refcount-table-entry': CHECK_EXIT_REFCOUNT,
  /** The refcount table itself is misplaced (header fields). */
  'refcount-table': CHECK_EXIT_REFCOUNT,
  /** The snapshot table or one of its entries is damaged. */
  'snapshot-table': CHECK_EXIT_SNAPSHOT_TABLE,
  /** An L1 entry that is unaligned, has reserved bits set or points past the end of the file. */
  'l1-entry': CHECK_EXIT_CORRUPT,
  /** An L1 table that is misplaced or too large. */
  'l1-table': CHECK_EXIT_CORRUPT,
  /** An L2 entry that is unaligned, has reserved bits set or points past the end of the file. */
  'l2-entry': CHECK_EXIT_CORRUPT,
  /** An extended L2 subcluster bitmap that is invalid. */
  'extended-l2-bitmap': CHECK_EXIT_CORRUPT,
  /** A zero flag in a version 2 image (which has no zero clusters). */
  'v2-zero-flag': CHECK_EXIT_CORRUPT,
  /** Two metadata structures, or data and metadata, share a cluster; or metadata overlaps the header. */
  overlap: CHECK_EXIT_CORRUPT,
  /** One host cluster is referenced by two active L2 entries (or one L2 table by two active L1 entries). */
  'reused-cluster': CHECK_EXIT_CORRUPT,
  /** A header field is invalid (sizes, features, extensions). */
  header: CHECK_EXIT_CORRUPT,
  /** The persistent bitmaps directory or a bitmap table is damaged. */
  bitmaps: CHECK_EXIT_CORRUPT,
  /** A structure could not be read. */
  'read-error': CHECK_EXIT_CORRUPT,
} as const;

export type FindingKind = keyof typeof FINDING_EXIT_CODES;
export const FINDING_KINDS = Object.keys(FINDING_EXIT_CODES) as FindingKind[];

/** Which table an entry-level finding belongs to. */
export type FindingScope = 'active' | { snapshotIndex: number };

export interface CheckFinding {
  kind: FindingKind;
  message: string;
  /** The structure involved: "active L1 table", "L2 table", "refcount block 3", "snapshot 1 (s1)", … */
  structure: string;
  /** Whose tables: "active" or the snapshot's id. */
  owner?: string | undefined;
  /** Index of the table: the L1 index whose L2 table this is, or the refcount table index. */
  tableIndex?: number | undefined;
  /** Index of the entry within its table. */
  entryIndex?: number | undefined;
  /** Byte offset of the entry (or structure) in the image file. */
  entryOffset?: number | undefined;
  /** Host byte offset the entry points to (or of the cluster concerned). */
  hostOffset?: number | undefined;
  /** Host cluster index concerned. */
  cluster?: number | undefined;
  /** Guest (virtual) byte offset the entry maps. */
  virtualOffset?: number | undefined;
  /** The raw 64-bit entry, hex. */
  entry?: string | undefined;
  /**
   * Stored refcount, exact: a number while it is a safe integer, a bigint above
   * 2^53 - 1 (64-bit refcounts only). `--json` prints the bigint as a decimal string.
   */
  refcount?: number | bigint | undefined;
  /** References counted. */
  reference?: number | undefined;
  /** Who references the cluster (filled in by the locate pass in `error` and `dump` modes). */
  referencedBy?: FindingReference[] | undefined;
}

/** One reference to a host cluster: a table entry or a metadata structure. */
export interface FindingReference {
  /** "active", a snapshot id, or "image" for structures of the image as a whole. */
  owner: string;
  /** "L2 table", "active L1 table", "refcount block", … */
  structure: string;
  tableIndex?: number | undefined;
  entryIndex?: number | undefined;
  entryOffset?: number | undefined;
  virtualOffset?: number | undefined;
}

export interface FindingCollectorOptions {
  /** Detailed findings kept per kind (counts are always complete). Default 1000. */
  maxPerKind?: number | undefined;
}

export class FindingCollector {
  readonly counts = new Map<FindingKind, number>();
  readonly #kept = new Map<FindingKind, CheckFinding[]>();
  readonly #maxPerKind: number;

  constructor(options: FindingCollectorOptions = {}) {
    this.#maxPerKind = options.maxPerKind ?? 1000;
  }

  add(finding: CheckFinding): void {
    this.counts.set(finding.kind, (this.counts.get(finding.kind) ?? 0) + 1);
    let kept = this.#kept.get(finding.kind);
    if (kept === undefined) {
      kept = [];
      this.#kept.set(finding.kind, kept);
    }
    if (kept.length < this.#maxPerKind) kept.push(finding);
  }

  /** Counts a finding without building its details (for hot paths past the limit). */
  wantsDetails(kind: FindingKind): boolean {
    return (this.#kept.get(kind)?.length ?? 0) < this.#maxPerKind;
  }

  /** Counts `count` findings of a kind whose details were not kept. */
  addCount(kind: FindingKind, count: number): void {
    if (count > 0) this.counts.set(kind, (this.counts.get(kind) ?? 0) + count);
  }

  count(kind: FindingKind): number {
    return this.counts.get(kind) ?? 0;
  }

  /** Kept findings in kind order (most severe last in FINDING_KINDS order is irrelevant). */
  findings(): CheckFinding[] {
    const all: CheckFinding[] = [];
    for (const kind of FINDING_KINDS) all.push(...(this.#kept.get(kind) ?? []));
    return all;
  }

  kept(kind: FindingKind): CheckFinding[] {
    return this.#kept.get(kind) ?? [];
  }

  truncated(): boolean {
    for (const [kind, count] of this.counts) {
      if (count > (this.#kept.get(kind)?.length ?? 0)) return true;
    }
    return false;
  }

  exitCode(): number {
    let code = CHECK_EXIT_CLEAN;
    for (const [kind, count] of this.counts) {
      if (count > 0) code = Math.max(code, FINDING_EXIT_CODES[kind]);
    }
    return code;
  }
}

export type CheckVerdict =
  | 'clean'
  | 'leaks'
  | 'copied-mismatch'
  | 'flagged'
  | 'refcount-errors'
  | 'snapshot-table-damaged'
  | 'corrupt'
  | 'could-not-run';

export function verdictFor(exitCode: number): CheckVerdict {
  switch (exitCode) {
    case CHECK_EXIT_CLEAN:
      return 'clean';
    case CHECK_EXIT_LEAKS:
      return 'leaks';
    case CHECK_EXIT_COPIED:
      return 'copied-mismatch';
    case CHECK_EXIT_FLAGGED:
      return 'flagged';
    case CHECK_EXIT_REFCOUNT:
      return 'refcount-errors';
    case CHECK_EXIT_SNAPSHOT_TABLE:
      return 'snapshot-table-damaged';
    case CHECK_EXIT_CORRUPT:
      return 'corrupt';
    default:
      return 'could-not-run';
  }
}

export type PreallocationMode = 'off' | 'metadata' | 'full';

/** The result of `checkImage`. Keys shared with `qemu-img check --output=json` use its names. */
export interface CheckReport {
  filename: string;
  format: 'qcow2';
  /** qemu-img's figures (same names as its JSON; here always present, also when zero). */
  'check-errors': number;
  corruptions: number;
  leaks: number;
  'image-end-offset': number;
  'total-clusters': number;
  'allocated-clusters': number;
  'fragmented-clusters': number;
  'compressed-clusters': number;

  verdict: CheckVerdict;
  exitCode: number;
  version: number;
  clusterSize: number;
  virtualSize: number;
  fileSize: number;
  refcountBits: number;
  corruptBit: boolean;
  dirtyBit: boolean;
  lazyRefcounts: boolean;
  /** Counts per finding kind (kinds with none are omitted). */
  counts: Partial<Record<FindingKind, number>>;
  /** Detailed findings (bounded per kind; see `truncated`). */
  findings: CheckFinding[];
  truncated: boolean;
  preallocation: PreallocationMode;
  snapshots: number;
  /** Active clusters no snapshot shares: what copy-on-write has added since the snapshots. */
  copyOnWrite?: { clusters: number; bytes: number } | undefined;
  fragmentation: {
    /** fragmented / allocated, in percent. */
    percent: number;
    /** Whether rewriting (`qcow2 convert -O qcow2`) would help reads, and why. */
    rewriteRecommended: boolean;
    reason: string;
  };
  /** The repair that would fix what was found, if any. */
  suggestedRepair?: string | undefined;
  /** Bytes of counter memory the check used. */
  tallyBytes: number;
  elapsedMs: number;
}
