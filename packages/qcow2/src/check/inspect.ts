import { FileDevice } from '@x/blockio';
import { nameFeatureBits } from '../format/header-extensions.js';
import { readHeaderFacts } from './header-facts.js';
import { type CheckFinding, FindingCollector, type FindingKind, verdictFor } from './report.js';
import { readSnapshotTableForCheck } from './snapshot-table.js';
import { StoredRefcounts } from './stored-refcounts.js';

/** The basic facts of an image, read without walking its tables (`check --mode info`). */
export interface ImageFacts {
  filename: string;
  format: 'qcow2';
  version: number;
  'virtual-size': number;
  'cluster-size': number;
  fileSize: number;
  headerLength: number;
  refcountBits: number;
  l1Table: { offset: number; entries: number };
  refcountTable: { offset: number; clusters: number; blocks: number };
  snapshotTable: { offset: number; count: number };
  snapshots: Array<{
    id: string;
    name: string;
    l1Offset: number;
    l1Size: number;
    dateSec: number;
    damaged: boolean;
  }>;
  features: { incompatible: string[]; compatible: string[]; autoclear: string[] };
  extensions: Array<{ type: string; offset: number; length: number }>;
  backingFile?: string | undefined;
  backingFormat?: string | undefined;
  dataFile?: string | undefined;
  compressionType: string;
  encrypted: boolean;
  extendedL2: boolean;
  corruptBit: boolean;
  dirtyBit: boolean;
  lazyRefcounts: boolean;
  counts: Partial<Record<FindingKind, number>>;
  findings: CheckFinding[];
  exitCode: number;
  verdict: string;
}

/**
 * Reads the header, its extensions, the snapshot table and the refcount table
 * of an image that may be too damaged to open normally, and reports what is
 * wrong with them. Does not walk L1/L2 tables.
 */
export async function inspectImage(path: string): Promise<ImageFacts> {
  const file = await FileDevice.open(path);
  try {
    const findings = new FindingCollector();
    const facts = await readHeaderFacts(file, findings);
    const table = await readSnapshotTableForCheck(file, facts, findings);
    const stored = await StoredRefcounts.load(file, facts, findings);
    let blocks = 0;
    for (let index = 0; index < stored.entries; index++)
      if (stored.blockOffset(index) > 0) blocks++;
    const { header, extensions } = facts;
    let backingFile: string | undefined;
    const nameEnd = Number(header.backingFileOffset) + header.backingFileSize;
    if (
      header.backingFileOffset !== 0n &&
      header.backingFileSize <= 1023 &&
      nameEnd <= facts.clusterSize
    ) {
      backingFile = (
        await file.read(Number(header.backingFileOffset), header.backingFileSize)
      ).toString('utf8');
    }
    const counts: Partial<Record<FindingKind, number>> = {};
    for (const [kind, count] of findings.counts) counts[kind] = count;
    const exitCode = findings.exitCode();
    return {
      filename: path,
      format: 'qcow2',
      version: facts.version,
      'virtual-size': facts.virtualSize,
      'cluster-size': facts.clusterSize,
      fileSize: facts.fileSize,
      headerLength: header.headerLength,
      refcountBits: facts.geometry.refcountBits,
      l1Table: { offset: facts.l1.offset, entries: header.l1Size },
      refcountTable: {
        offset: facts.refcountTable.offset,
        clusters: header.refcountTableClusters,
        blocks,
      },
      snapshotTable: { offset: table.offset, count: header.nbSnapshots },
      snapshots: table.snapshots.map((s) => ({
        id: s.id,
        name: s.name,
        l1Offset: s.l1Offset,
        l1Size: s.l1Size,
        dateSec: s.dateSec,
        damaged: s.damaged,
      })),
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
        autoclear: nameFeatureBits(header.autoclearFeatures, 'autoclear', extensions.featureNames),
      },
      extensions: extensions.all.map((e) => ({
        type: `0x${e.type.toString(16).padStart(8, '0')}`,
        offset: e.offset,
        length: e.data.byteLength,
      })),
      backingFile,
      backingFormat: extensions.backingFormat,
      dataFile: facts.dataFile ? extensions.dataFile : undefined,
      compressionType: facts.compressionType,
      encrypted: facts.encrypted,
      extendedL2: facts.extendedL2,
      corruptBit: facts.corruptBit,
      dirtyBit: facts.dirtyBit,
      lazyRefcounts: facts.lazyRefcounts,
      counts,
      findings: findings.findings(),
      exitCode,
      verdict: verdictFor(exitCode),
    };
  } finally {
    await file.close();
  }
}
