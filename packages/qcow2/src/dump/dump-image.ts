import { FileDevice, throwIfAborted } from '@x/blockio';
import { describeL2Entry, type L2EntryDescription } from '../check/describe-entry.js';
import { readHeaderFacts } from '../check/header-facts.js';
import { FindingCollector } from '../check/report.js';
import { readSnapshotTableForCheck } from '../check/snapshot-table.js';
import {
  entryHex,
  REFBLOCK_ABSENT,
  REFBLOCK_INVALID,
  StoredRefcounts,
} from '../check/stored-refcounts.js';
import { forEachTable, type SnapshotScope, walkOwners } from '../check/table-iterator.js';
import { headerFieldOffsets } from '../format/header.js';
import { nameFeatureBits } from '../format/header-extensions.js';
import {
  entryOffset,
  readRefcountValue,
  refcountTableEntryOffset,
} from '../format/table-entries.js';
import { findSnapshot } from '../snapshot/find-snapshot.js';

export type DumpSection = 'header' | 'header-offsets' | 'snapshots' | 'l1' | 'l2' | 'refcounts';
export const DUMP_SECTIONS: DumpSection[] = [
  'header',
  'header-offsets',
  'snapshots',
  'l1',
  'l2',
  'refcounts',
];

/** One thing `dumpImage` reports; records arrive grouped by section, in DUMP_SECTIONS order. */
export type DumpRecord =
  | {
      section: 'header';
      fields: Record<string, number | bigint | string>;
      features: { incompatible: string[]; compatible: string[]; autoclear: string[] };
      extensions: Array<{ type: string; offset: number; length: number; data: string }>;
      backingFile: string | undefined;
    }
  | {
      section: 'header-offsets';
      name: string;
      offset: number;
      size: number;
      value: string;
      doc: string;
    }
  | {
      section: 'snapshots';
      index: number;
      entryOffset: number;
      id: string;
      name: string;
      l1Offset: number;
      l1Size: number;
      dateSec: number;
      diskSize: bigint | undefined;
      damaged: boolean;
    }
  | {
      section: 'l1';
      owner: string;
      index: number;
      entryOffset: number;
      entry: string;
      l2Offset: number;
      copied: boolean;
      virtualOffset: number;
    }
  | ({
      section: 'l2';
      owner: string;
      l1Index: number;
      entryIndex: number;
      entryOffset: number;
      virtualOffset: number;
    } & L2EntryDescription)
  | {
      /** One refcount table entry and, when its block is valid, the block's refcounts as runs. */
      section: 'refcounts';
      index: number;
      entryOffset: number;
      entry: string;
      blockOffset: number;
      valid: boolean;
      /** Runs of equal refcounts; a 64-bit refcount above 2^53 - 1 is an exact bigint. */
      runs: Array<{ firstCluster: number; clusters: number; refcount: number | bigint }>;
    };

export interface DumpOptions {
  sections: DumpSection[];
  /** Whose L1/L2 tables: active, inactive, all, or a snapshot id or name. Default active. */
  snapshot?: SnapshotScope | undefined;
  /** Awaited per record, so a writer can wait for its output to drain. */
  onRecord: (record: DumpRecord) => void | Promise<void>;
  signal?: AbortSignal | undefined;
}

/**
 * Dumps an image's structures for people repairing by hand: every header field
 * (and its byte offset), the snapshot table, L1 and L2 entries with flags and
 * guest offsets, the refcount table and the refcounts as runs. Works on images
 * too damaged to open normally; never writes. Unallocated L2 entries (all
 * zero) are skipped; refcounts come as runs of equal values.
 */
export async function dumpImage(path: string, options: DumpOptions): Promise<void> {
  const file = await FileDevice.open(path);
  try {
    const findings = new FindingCollector();
    const facts = await readHeaderFacts(file, findings);
    const table = await readSnapshotTableForCheck(file, facts, findings);
    const want = new Set(options.sections);
    const emit = options.onRecord;
    const { header, extensions, geometry } = facts;

    if (want.has('header')) {
      const { unknownHeaderBytes, ...fields } = header;
      let backingFile: string | undefined;
      const nameEnd = Number(header.backingFileOffset) + header.backingFileSize;
      if (
        header.backingFileOffset !== 0n &&
        nameEnd <= facts.clusterSize &&
        nameEnd <= facts.fileSize
      ) {
        backingFile = (
          await file.read(Number(header.backingFileOffset), header.backingFileSize)
        ).toString('utf8');
      }
      await emit({
        section: 'header',
        fields: { ...fields, clusterSize: facts.clusterSize, refcountBits: geometry.refcountBits },
        features: {
          incompatible: nameFeatureBits(
            header.incompatibleFeatures,
            'incompatible',
            extensions.featureNames,
          ),
          compatible: nameFeatureBits(
            header.compatibleFeatures,
            'compatible',
            extensions.featureNames,
          ),
          autoclear: nameFeatureBits(
            header.autoclearFeatures,
            'autoclear',
            extensions.featureNames,
          ),
        },
        extensions: extensions.all.map((e) => ({
          type: `0x${e.type.toString(16).padStart(8, '0')}`,
          offset: e.offset,
          length: e.data.byteLength,
          data: Buffer.from(e.data.subarray(0, 64)).toString('hex'),
        })),
        backingFile,
      });
    }
    if (want.has('header-offsets')) {
      const raw = await file.read(0, Math.min(facts.fileSize, 112));
      for (const field of headerFieldOffsets(facts.version)) {
        if (facts.version >= 3 && field.offset >= header.headerLength && field.offset >= 104)
          continue;
        const bytes = raw.subarray(field.offset, field.offset + field.size);
        await emit({ section: 'header-offsets', ...field, value: `0x${bytes.toString('hex')}` });
      }
    }
    if (want.has('snapshots')) {
      for (const s of table.snapshots) {
        await emit({
          section: 'snapshots',
          index: s.index,
          entryOffset: s.entryOffset,
          id: s.id,
          name: s.name,
          l1Offset: s.l1Offset,
          l1Size: s.l1Size,
          dateSec: s.dateSec,
          diskSize: s.diskSize,
          damaged: s.damaged,
        });
      }
    }
    const scope = options.snapshot ?? 'active';
    if (!['active', 'inactive', 'all'].includes(scope)) {
      findSnapshot(table.snapshots, scope, path, { tableDamaged: table.damaged });
    }
    const owners = walkOwners(facts, table.snapshots, scope).filter((owner) => owner.report);
    if (want.has('l1')) {
      for (const owner of owners) {
        await forEachTable(
          file,
          facts,
          owner,
          {
            l1: (index, hi, lo, at) =>
              emit({
                section: 'l1',
                owner: owner.id,
                index,
                entryOffset: at,
                entry: entryHex(hi, lo),
                l2Offset: entryOffset(hi, lo),
                copied: (hi & 0x80000000) !== 0,
                virtualOffset: index * geometry.l2Coverage,
              }),
          },
          options.signal,
        );
      }
    }
    if (want.has('l2')) {
      const { l2Entries, l2EntrySize, clusterSize, clusterBits, extendedL2 } = geometry;
      for (const owner of owners) {
        await forEachTable(
          file,
          facts,
          owner,
          {
            l2: async ({ table: l2, l1Index, l2Offset }) => {
              for (let i = 0; i < l2Entries; i++) {
                const at = i * l2EntrySize;
                const hi = l2.readUInt32BE(at);
                const lo = l2.readUInt32BE(at + 4);
                const b0 = extendedL2 ? l2.readUInt32BE(at + 8) : 0;
                const b1 = extendedL2 ? l2.readUInt32BE(at + 12) : 0;
                if (hi === 0 && lo === 0 && b0 === 0 && b1 === 0) continue;
                await emit({
                  section: 'l2',
                  owner: owner.id,
                  l1Index,
                  entryIndex: i,
                  entryOffset: l2Offset + at,
                  virtualOffset: l1Index * geometry.l2Coverage + i * clusterSize,
                  ...(extendedL2
                    ? describeL2Entry(hi, lo, clusterBits, b0, b1)
                    : describeL2Entry(hi, lo, clusterBits)),
                });
              }
            },
          },
          options.signal,
        );
      }
    }
    if (want.has('refcounts')) {
      const stored = await StoredRefcounts.load(file, facts, findings);
      const raw = Buffer.alloc(8);
      const block = Buffer.alloc(facts.clusterSize);
      const { refcountBlockEntries: perBlock, refcountOrder } = geometry;
      for (let index = 0; index < stored.entries; index++) {
        throwIfAborted(options.signal);
        const entryAt = facts.refcountTable.offset + index * 8;
        if (entryAt + 8 <= facts.fileSize) await file.read(entryAt, raw);
        else raw.fill(0);
        const offset = stored.blockOffset(index);
        if (offset === REFBLOCK_ABSENT) continue;
        const hi = raw.readUInt32BE(0);
        const lo = raw.readUInt32BE(4);
        const runs: Array<{
          firstCluster: number;
          clusters: number;
          refcount: number | bigint;
        }> = [];
        if (offset !== REFBLOCK_INVALID) {
          await stored.readBlock(offset, block);
          let start = 0;
          let value = readRefcountValue(block, 0, refcountOrder);
          for (let entry = 1; entry <= perBlock; entry++) {
            const next = entry < perBlock ? readRefcountValue(block, entry, refcountOrder) : -1;
            if (next === value) continue;
            runs.push({
              firstCluster: index * perBlock + start,
              clusters: entry - start,
              refcount: value,
            });
            start = entry;
            value = next;
          }
        }
        await emit({
          section: 'refcounts',
          index,
          entryOffset: entryAt,
          entry: entryHex(hi, lo),
          blockOffset: refcountTableEntryOffset(hi, lo),
          valid: offset !== REFBLOCK_INVALID,
          runs,
        });
      }
    }
  } finally {
    await file.close();
  }
}
