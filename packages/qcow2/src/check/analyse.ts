import { type BlockDevice, type LongRunningOptions, ProgressTracker } from '@x/blockio';
import { QCOW_MAX_L1_SIZE } from '../format/constants.js';
import { entryOffset } from '../format/table-entries.js';
import { findSnapshot } from '../snapshot/find-snapshot.js';
import { ReferencesBeyondEnd } from './beyond-end.js';
import { forEachBitmapRegion } from './bitmaps.js';
import { clampOffset, type HeaderFacts, readHeaderFacts } from './header-facts.js';
import { MetadataMap, OWNER_ACTIVE, OWNER_IMAGE } from './metadata-map.js';
import { RefcountTally } from './refcount-tally.js';
import { type CompareResult, compareRefcounts, type MismatchVisitor } from './refcounts.js';
import { FindingCollector } from './report.js';
import { readSnapshotTableForCheck, type SnapshotTableFacts } from './snapshot-table.js';
import { StoredRefcounts } from './stored-refcounts.js';
import { forEachTable, type SnapshotScope, walkOwners } from './table-iterator.js';
import {
  type ActiveStats,
  type L2EntryEvent,
  readClipped,
  TableWalker,
  type WalkOwner,
} from './walk-tables.js';

export interface AnalyseOptions extends LongRunningOptions {
  /** Which tables entry-level findings are reported for. Default all. */
  snapshot?: SnapshotScope | undefined;
  /** Detailed findings kept per kind. Default 1000. */
  maxFindingsPerKind?: number | undefined;
  /** Leave the refcount structures out of the tally (for rebuilding them). */
  excludeRefcountStructures?: boolean | undefined;
  onL2Entry?: ((event: L2EntryEvent) => void) | undefined;
  onL1Entry?:
    | ((owner: WalkOwner, index: number, entry: string, l2Offset: number) => void)
    | undefined;
  /** Awaited after each L2 table (lets a dump writer wait for its output to drain). */
  onTableDone?: (() => void | Promise<void>) | undefined;
  /** Every stored/counted refcount mismatch. */
  onMismatch?: MismatchVisitor | undefined;
}

/** One L2 table shared by several entries of one L1 table. */
export interface SharedL2Table {
  /** OWNER_ACTIVE (-1) or the snapshot's index. */
  owner: number;
  /** The L1 entries pointing at it, in order. */
  l1Indices: number[];
  offset: number;
}

/** Everything check learns about an image; repair plans from it. */
export interface ImageAnalysis {
  file: BlockDevice;
  facts: HeaderFacts;
  snapshotTable: SnapshotTableFacts;
  owners: WalkOwner[];
  stored: StoredRefcounts;
  tally: RefcountTally;
  activeData: RefcountTally;
  metadata: MetadataMap;
  /** Clusters where guest data overlaps metadata or structures overlap each other. */
  aliased: RefcountTally;
  /**
   * L2 tables that two or more entries of one L1 table point at (counted once
   * per entry, as qemu-img does; not in `aliased`, since a repair can make the
   * sharing consistent).
   */
  sharedL2Tables: SharedL2Table[];
  /** Clusters referenced at or past the end of the file (not in `tally`). */
  beyondEnd: ReferencesBeyondEnd;
  findings: FindingCollector;
  stats: ActiveStats;
  compare: CompareResult;
}

/**
 * Reads a possibly damaged image without trusting it: header, snapshot table,
 * refcount table, every metadata structure's location, then every reference,
 * then compares with the stored refcounts. Never writes.
 */
export async function analyseImage(
  file: BlockDevice,
  options: AnalyseOptions = {},
): Promise<ImageAnalysis> {
  const findings = new FindingCollector({ maxPerKind: options.maxFindingsPerKind });
  const facts = await readHeaderFacts(file, findings);
  const snapshotTable = await readSnapshotTableForCheck(file, facts, findings);
  const scope = options.snapshot ?? 'all';
  if (!['active', 'inactive', 'all'].includes(scope)) {
    findSnapshot(snapshotTable.snapshots, scope, file.name, {
      tableDamaged: snapshotTable.damaged,
    });
  }
  const owners = walkOwners(facts, snapshotTable.snapshots, scope);
  const stored = await StoredRefcounts.load(file, facts, findings);
  const metadata = await collectMetadata(
    file,
    facts,
    snapshotTable,
    owners,
    stored,
    options.signal,
  );
  const aliased = new RefcountTally({ saturating: true });
  const sharedL2Tables = reportMetadataOverlaps(metadata, findings, facts, aliased);

  const tally = new RefcountTally();
  const beyondEnd = new ReferencesBeyondEnd();
  const activeData = new RefcountTally({ saturating: true });
  const copiedSet = new RefcountTally({ saturating: true });
  const copiedClear = new RefcountTally({ saturating: true });
  const stats: ActiveStats = {
    allocated: 0,
    fragmented: 0,
    compressed: 0,
    unmapped: 0,
    mapped: 0,
    exclusive: 0,
  };
  const tableTotal = metadata.countOf('active L2 table') + metadata.countOf('inactive L2 table');
  // Progress counts bytes of tables read, so the usual byte-rate renderers make sense.
  const tablesProgress = new ProgressTracker(
    'check tables',
    tableTotal * facts.clusterSize,
    options.onProgress,
  );
  const walker = new TableWalker({
    file,
    facts,
    tally,
    activeData,
    metadata,
    aliased,
    copiedSet,
    copiedClear,
    stored,
    beyondEnd,
    findings,
    stats,
    countData: !facts.dataFile,
    signal: options.signal,
    onTable: () => {
      tablesProgress.advance(facts.clusterSize);
      return options.onTableDone?.();
    },
    onEntry: options.onL2Entry,
    onL1Entry: options.onL1Entry,
  });

  tally.add(0);
  // Snapshots before the active tables, so the active walk can tell which clusters no snapshot shares.
  for (const owner of owners.slice(1)) await walker.walkL1(owner);
  await walker.walkL1(owners[0] as WalkOwner);
  tablesProgress.finish();
  // L1 tables the walk skipped because they start past the end (or run past it) are referenced all the same.
  recordRegionPastEnd(beyondEnd, facts, facts.l1.offset, facts.l1.length);
  for (const snapshot of snapshotTable.snapshots) {
    if (!snapshot.l1Readable)
      recordRegionPastEnd(beyondEnd, facts, snapshot.l1Offset, snapshot.l1Size * 8);
  }
  // A snapshot table cut off by the end of the file still owns at least its first entry's place.
  if (facts.snapshotTable.count > 0 && snapshotTable.size === 0) {
    recordRegionPastEnd(beyondEnd, facts, snapshotTable.offset, facts.snapshotTable.count * 40);
  }
  walker.countRegion(snapshotTable.offset, snapshotTable.size, 'snapshot table', 'snapshot-table');
  if (!options.excludeRefcountStructures && facts.refcountTable.readable) {
    walker.countRegion(
      facts.refcountTable.offset,
      facts.refcountTable.length,
      'refcount table',
      'refcount-table',
    );
  }
  const crypto = facts.extensions.cryptoHeader;
  if (crypto !== undefined) {
    walker.countRegion(
      clampOffset(crypto.offset),
      clampOffset(crypto.length),
      'crypto header',
      'header',
    );
  }
  await forEachBitmapRegion(file, facts, findings, (region) =>
    walker.countRegion(region.offset, region.length, region.kind, 'bitmaps'),
  );
  if (!options.excludeRefcountStructures) {
    for (let index = 0; index < stored.entries; index++) {
      const offset = stored.blockOffset(index);
      if (offset > 0) tally.add(Math.floor(offset / facts.clusterSize));
    }
  }

  const blocksProgress = new ProgressTracker(
    'check refcounts',
    Math.ceil(Math.max(facts.fileClusters, tally.end) / facts.geometry.refcountBlockEntries) *
      facts.clusterSize,
    options.onProgress,
  );
  const compare = await compareRefcounts({
    tally,
    stored,
    geometry: facts.geometry,
    fileClusters: facts.fileClusters,
    findings,
    onMismatch: options.onMismatch,
    copied: { set: copiedSet, clear: copiedClear },
    signal: options.signal,
    onBlock: () => blocksProgress.advance(facts.clusterSize),
  });
  blocksProgress.finish();
  return {
    file,
    facts,
    snapshotTable,
    owners,
    stored,
    tally,
    activeData,
    metadata,
    aliased,
    sharedL2Tables,
    beyondEnd,
    findings,
    stats,
    compare,
  };
}

function recordRegionPastEnd(
  beyondEnd: ReferencesBeyondEnd,
  facts: HeaderFacts,
  offset: number,
  length: number,
): void {
  // An absurd size is clamped to QEMU's own limit (the larger of the L1 and snapshot table limits).
  length = Math.min(length, QCOW_MAX_L1_SIZE);
  if (offset <= 0 || length <= 0 || offset + length <= facts.fileSize) return;
  const first = Math.floor(Math.max(offset, facts.fileSize) / facts.clusterSize);
  const last = Math.floor((offset + length - 1) / facts.clusterSize);
  beyondEnd.add(first, last - first + 1);
}

async function collectMetadata(
  file: BlockDevice,
  facts: HeaderFacts,
  snapshotTable: SnapshotTableFacts,
  owners: WalkOwner[],
  stored: StoredRefcounts,
  signal: AbortSignal | undefined,
): Promise<MetadataMap> {
  const metadata = new MetadataMap(facts.clusterSize);
  metadata.add('qcow2 header', 0, facts.clusterSize, OWNER_IMAGE);
  if (facts.l1.readable)
    metadata.add('active L1 table', facts.l1.offset, facts.l1.entries * 8, OWNER_ACTIVE);
  if (facts.refcountTable.readable) {
    metadata.add(
      'refcount table',
      facts.refcountTable.offset,
      facts.refcountTable.length,
      OWNER_IMAGE,
    );
  }
  for (let index = 0; index < stored.entries; index++) {
    const offset = stored.blockOffset(index);
    if (offset > 0) metadata.add('refcount block', offset, facts.clusterSize, OWNER_IMAGE, index);
  }
  metadata.add('snapshot table', snapshotTable.offset, snapshotTable.size, OWNER_IMAGE);
  for (const snapshot of snapshotTable.snapshots) {
    if (snapshot.l1Readable) {
      metadata.add('inactive L1 table', snapshot.l1Offset, snapshot.l1Size * 8, snapshot.index);
    }
  }
  const crypto = facts.extensions.cryptoHeader;
  if (crypto !== undefined) {
    metadata.add(
      'crypto header',
      clampOffset(crypto.offset),
      clampOffset(crypto.length),
      OWNER_IMAGE,
    );
  }
  for (const owner of owners) {
    const kind = owner.active ? 'active L2 table' : 'inactive L2 table';
    await forEachTable(
      file,
      facts,
      owner,
      {
        l1: (index, hi, lo) => {
          const offset = entryOffset(hi, lo);
          if (offset !== 0 && offset < facts.fileSize) {
            metadata.add(kind, offset, facts.clusterSize, owner.owner, index);
          }
        },
      },
      signal,
    );
  }
  // The first pass (counting references) reported the directory's damage already.
  await forEachBitmapRegion(file, facts, new FindingCollector(), (region) => {
    if (region.kind !== 'bitmap data') {
      metadata.add(region.kind, region.offset, region.length, OWNER_IMAGE, region.bitmap);
    }
  });
  return metadata;
}

function reportMetadataOverlaps(
  metadata: MetadataMap,
  findings: FindingCollector,
  facts: HeaderFacts,
  aliased: RefcountTally,
): SharedL2Table[] {
  const clusterSize = facts.clusterSize;
  const shared = new Map<string, SharedL2Table>();
  const describe = (kind: string, owner: number, index: number) =>
    kind.endsWith('L2 table')
      ? `${kind} of L1 entry ${index}${owner >= 0 ? ` (snapshot #${owner})` : ''}`
      : kind === 'refcount block'
        ? `refcount block ${index}`
        : kind === 'inactive L1 table'
          ? `L1 table of snapshot #${owner}`
          : kind;
  let budget = 100_000;
  metadata.forEachOverlap((a, b, sameOwner) => {
    const cluster = Math.max(a.cluster, b.cluster);
    const overlapEnd = Math.min(a.cluster + a.clusters, b.cluster + b.clusters);
    if (sameOwner) {
      const key = `${a.owner}:${a.cluster}`;
      const table = shared.get(key);
      if (table === undefined) {
        shared.set(key, {
          owner: a.owner,
          l1Indices: [a.index, b.index],
          offset: a.cluster * clusterSize,
        });
      } else if (!table.l1Indices.includes(b.index)) {
        table.l1Indices.push(b.index);
      }
      findings.add({
        kind: a.owner === OWNER_ACTIVE ? 'reused-cluster' : 'overlap',
        message: `L1 entries ${a.index} and ${b.index} of the ${a.owner === OWNER_ACTIVE ? 'active' : `snapshot #${a.owner}`} L1 table point at the same L2 table`,
        structure: a.owner === OWNER_ACTIVE ? 'active L1 table' : 'inactive L1 table',
        tableIndex: b.index,
        entryIndex: b.index,
        cluster,
        hostOffset: cluster * clusterSize,
      });
    } else {
      aliased.addRange(cluster, overlapEnd - cluster);
      findings.add({
        kind: 'overlap',
        message: `the ${describe(b.kind, b.owner, b.index)} overlaps the ${describe(a.kind, a.owner, a.index)} at host cluster ${cluster}`,
        structure: b.kind,
        tableIndex: b.index,
        cluster,
        hostOffset: cluster * clusterSize,
      });
    }
    return --budget > 0;
  });
  return [...shared.values()];
}

export { readClipped };
