import type { BlockDevice } from '@x/blockio';
import { decodeCompressedDescriptor, entryOffset } from '../format/table-entries.js';
import type { HeaderFacts } from './header-facts.js';
import { type MetadataMap, OWNER_ACTIVE, OWNER_IMAGE } from './metadata-map.js';
import type { FindingCollector, FindingReference } from './report.js';
import { forEachTable } from './table-iterator.js';
import type { WalkOwner } from './walk-tables.js';

const LOCATED_KINDS = [
  'copied',
  'refcount-error',
  'reused-cluster',
  'refcount-overflow',
  'leak',
] as const;

/** Clusters located at most (the locate pass walks every table once more). */
const MAX_LOCATED_CLUSTERS = 1000;
/** References listed per cluster at most. */
const MAX_REFERENCES = 16;

/**
 * Fills in `referencedBy` for the kept findings that name a host cluster
 * (refcount errors, reused clusters, overflows, leaks): every metadata
 * structure there and every L1/L2 entry pointing at it.
 */
export async function locateReferences(
  file: BlockDevice,
  facts: HeaderFacts,
  owners: WalkOwner[],
  metadata: MetadataMap,
  findings: FindingCollector,
  signal?: AbortSignal,
): Promise<void> {
  const wanted = new Map<number, FindingReference[]>();
  for (const kind of LOCATED_KINDS) {
    for (const finding of findings.kept(kind)) {
      if (finding.cluster === undefined || wanted.size >= MAX_LOCATED_CLUSTERS) continue;
      wanted.set(finding.cluster, []);
    }
  }
  if (wanted.size === 0) return;
  const { clusterSize, clusterBits } = facts.geometry;
  const note = (cluster: number, reference: FindingReference) => {
    const list = wanted.get(cluster);
    if (list !== undefined && list.length < MAX_REFERENCES) list.push(reference);
  };
  for (const cluster of wanted.keys()) {
    for (const extent of metadata.at(cluster)) {
      if (extent.kind.endsWith('L2 table')) continue; // listed through their L1 entries below
      note(cluster, {
        owner:
          extent.owner === OWNER_IMAGE
            ? 'image'
            : extent.owner === OWNER_ACTIVE
              ? 'active'
              : `#${extent.owner}`,
        structure: extent.kind,
        tableIndex: extent.index,
      });
    }
  }
  const { l2Entries, l2EntrySize, l2Coverage } = facts.geometry;
  for (const owner of owners) {
    await forEachTable(
      file,
      facts,
      owner,
      {
        l1: (index, hi, lo, at) => {
          const offset = entryOffset(hi, lo);
          for (const cluster of clustersOf(offset, clusterSize, offset % clusterSize !== 0)) {
            note(cluster, {
              owner: owner.id,
              structure: `${owner.label} L1 table`,
              tableIndex: index,
              entryIndex: index,
              entryOffset: at,
              virtualOffset: index * l2Coverage,
            });
          }
        },
        l2: ({ table, l1Index, l2Offset }) => {
          for (let i = 0; i < l2Entries; i++) {
            const hi = table.readUInt32BE(i * l2EntrySize);
            const lo = table.readUInt32BE(i * l2EntrySize + 4);
            if (hi === 0 && lo === 0) continue;
            let clusters: number[];
            if ((hi & 0x40000000) !== 0) {
              const descriptor = decodeCompressedDescriptor(hi, lo, clusterBits);
              const start = descriptor.offset - (descriptor.offset % 512);
              const first = Math.floor(start / clusterSize);
              const last = Math.floor((start + descriptor.sectors * 512 - 1) / clusterSize);
              clusters = first === last ? [first] : [first, last];
            } else {
              const offset = entryOffset(hi, lo);
              if (offset === 0) continue;
              clusters = clustersOf(offset, clusterSize, offset % clusterSize !== 0);
            }
            for (const cluster of clusters) {
              if (!wanted.has(cluster)) continue;
              note(cluster, {
                owner: owner.id,
                structure: 'L2 table',
                tableIndex: l1Index,
                entryIndex: i,
                entryOffset: l2Offset + i * l2EntrySize,
                virtualOffset: l1Index * l2Coverage + i * clusterSize,
              });
            }
          }
        },
      },
      signal,
    );
  }
  for (const kind of LOCATED_KINDS) {
    for (const finding of findings.kept(kind)) {
      if (finding.cluster === undefined || !wanted.has(finding.cluster)) continue;
      const references = wanted.get(finding.cluster) ?? [];
      finding.referencedBy = references;
      // A COPIED mismatch is found per cluster; name the active L2 entry it is about.
      const entry = references.find((r) => r.owner === 'active' && r.structure === 'L2 table');
      if (kind === 'copied' && entry !== undefined && finding.entryIndex === undefined) {
        finding.tableIndex = entry.tableIndex;
        finding.entryIndex = entry.entryIndex;
        finding.entryOffset = entry.entryOffset;
        finding.virtualOffset = entry.virtualOffset;
      }
    }
  }
}

function clustersOf(offset: number, clusterSize: number, unaligned: boolean): number[] {
  const first = Math.floor(offset / clusterSize);
  return unaligned ? [first, first + 1] : [first];
}
