import type { BlockDevice } from '@x/blockio';
import {
  QCOW_MAX_L1_SIZE,
  QCOW_MAX_SNAPSHOT_EXTRA_DATA,
  QCOW_MAX_SNAPSHOTS_SIZE,
} from '../format/constants.js';
import { snapshotEntryHeader, snapshotString } from '../format/snapshot-table.js';
import { clampOffset, type HeaderFacts } from './header-facts.js';
import type { CheckFinding, FindingCollector } from './report.js';

/** One snapshot table entry as check sees it, damaged or not. */
export interface SnapshotInfo {
  index: number;
  /** Byte offset of the entry in the image. */
  entryOffset: number;
  id: string;
  name: string;
  /** "snapshot 1 (s1)" for messages. */
  label: string;
  l1Offset: number;
  l1Size: number;
  /** Whether check walks its L1 table (aligned, size sane, inside the file). */
  l1Readable: boolean;
  /** Entries to walk. */
  l1Entries: number;
  diskSize: bigint | undefined;
  dateSec: number;
  /** Something about the entry is wrong (see the findings). */
  damaged: boolean;
}

export interface SnapshotTableFacts {
  offset: number;
  /** Bytes of the entries parsed (what QEMU counts as the table's size). */
  size: number;
  snapshots: SnapshotInfo[];
  /** The table is damaged as a whole (misplaced, truncated). */
  damaged: boolean;
}

/**
 * Parses the snapshot table entry by entry, reporting what is wrong with each
 * (offsets, L1 sizes, duplicate ids, truncated or oversized extra data) and
 * keeping every entry it can still read.
 */
export async function readSnapshotTableForCheck(
  file: BlockDevice,
  facts: HeaderFacts,
  findings: FindingCollector,
): Promise<SnapshotTableFacts> {
  const { offset, count } = facts.snapshotTable;
  const table: SnapshotTableFacts = { offset, size: 0, snapshots: [], damaged: false };
  const tableProblem = (message: string, extra: Partial<CheckFinding> = {}) => {
    table.damaged = true;
    findings.add({
      kind: 'snapshot-table',
      message,
      structure: 'snapshot table',
      entryOffset: offset,
      ...extra,
    });
  };
  if (count === 0) {
    // QEMU validates the offset even with no snapshots, and refuses to open the image.
    if (!facts.geometry.isClusterAligned(offset)) {
      tableProblem(
        `snapshot table offset 0x${offset.toString(16)} is not a multiple of the cluster size (QEMU: "snapshot table offset invalid"), though there are no snapshots`,
        { structure: 'qcow2 header', entryOffset: 64, hostOffset: offset },
      );
    }
    return table;
  }
  if (offset === 0 || !facts.geometry.isClusterAligned(offset)) {
    tableProblem(
      `snapshot table offset 0x${offset.toString(16)} is not a non-zero multiple of the cluster size`,
      { structure: 'qcow2 header', entryOffset: 64, hostOffset: offset },
    );
    return table;
  }
  if (offset >= facts.fileSize) {
    tableProblem(`snapshot table at 0x${offset.toString(16)} lies beyond the end of the file`, {
      structure: 'qcow2 header',
      entryOffset: 64,
      hostOffset: offset,
    });
    return table;
  }

  const ids = new Map<string, number>();
  const read = (at: number, length: number) => readZeroFilled(file, at, length, facts.fileSize);
  let at = offset;
  for (let index = 0; index < count; index++) {
    const where = { structure: `snapshot table entry ${index}`, entryOffset: at };
    if (at - offset + snapshotEntryHeader.size > QCOW_MAX_SNAPSHOTS_SIZE) {
      tableProblem(`snapshot table exceeds QEMU's ${QCOW_MAX_SNAPSHOTS_SIZE}-byte limit`, where);
      break;
    }
    if (at >= facts.fileSize) {
      // Nothing of it in the file: QEMU reads zeros (no L1 table) and calls it incomplete.
      tableProblem(
        `snapshot table is truncated: entry ${index} of ${count} starts past the end of the file`,
        where,
      );
      at += snapshotEntryHeader.size;
      continue;
    }
    const fixed = snapshotEntryHeader.decode(await read(at, snapshotEntryHeader.size), 0);
    const variableAt = at + snapshotEntryHeader.size;
    const end = variableAt + fixed.extraDataSize + fixed.idStrSize + fixed.nameSize;
    // Only the first 16 bytes of extra data are used; an oversized one is reported below.
    const extra = await read(variableAt, Math.min(fixed.extraDataSize, 16));
    const idAt = variableAt + fixed.extraDataSize;
    const id = snapshotString(await read(idAt, fixed.idStrSize));
    const name = snapshotString(await read(idAt + fixed.idStrSize, fixed.nameSize));
    const info: SnapshotInfo = {
      index,
      entryOffset: at,
      id,
      name,
      label: `snapshot ${id || `#${index}`} (${name})`,
      l1Offset: clampOffset(fixed.l1TableOffset),
      l1Size: fixed.l1Size,
      l1Readable: true,
      l1Entries: fixed.l1Size,
      diskSize: extra.byteLength >= 16 ? extra.readBigUInt64BE(8) : undefined,
      dateSec: fixed.dateSec,
      damaged: false,
    };
    const problem = (message: string, extraFields: Partial<CheckFinding> = {}) => {
      info.damaged = true;
      findings.add({
        kind: 'snapshot-table',
        message: `${info.label}: ${message}`,
        ...where,
        owner: id,
        ...extraFields,
      });
    };
    if (end > facts.fileSize && fixed.extraDataSize > QCOW_MAX_SNAPSHOT_EXTRA_DATA) {
      // QEMU refuses such a table; its entries from here on cannot be located.
      tableProblem(
        `snapshot table entry ${index} runs past the end of the file: its extra data of ${fixed.extraDataSize} bytes exceeds QEMU's ${QCOW_MAX_SNAPSHOT_EXTRA_DATA}-byte limit`,
        where,
      );
      break;
    }
    if (end > facts.fileSize) {
      // QEMU reads the missing bytes as zeros and still counts the entry's L1 table: so do we.
      table.damaged = true;
      problem(
        `snapshot table entry ${index} is incomplete: it runs past the end of the file (the missing bytes read as zeros)`,
      );
    }
    if (fixed.extraDataSize > QCOW_MAX_SNAPSHOT_EXTRA_DATA) {
      problem(
        `extra data of ${fixed.extraDataSize} bytes exceeds QEMU's ${QCOW_MAX_SNAPSHOT_EXTRA_DATA}-byte limit`,
      );
    } else if (facts.version >= 3 && fixed.extraDataSize < 16) {
      problem(
        `extra data is truncated to ${fixed.extraDataSize} bytes (version 3 needs at least 16: vm_state_size_large and disk_size)`,
      );
    }
    // QEMU tolerates empty and duplicate ids (qemu-img check finds no error): noted only.
    const tolerated = (message: string) =>
      findings.add({ kind: 'ignored', message: `${info.label}: ${message}`, ...where, owner: id });
    const previous = ids.get(id);
    if (fixed.idStrSize === 0) tolerated('the snapshot has an empty id; QEMU tolerates it');
    else if (previous !== undefined) {
      tolerated(
        `duplicate id "${id}" (also entry ${previous}); QEMU tolerates it, and a lookup by this id finds entry ${previous}`,
      );
    } else ids.set(id, index);
    checkSnapshotL1(info, facts, problem);
    table.snapshots.push(info);
    at = offset + Math.ceil((end - offset) / 8) * 8;
  }
  table.size = at - offset;
  return table;
}

function checkSnapshotL1(
  info: SnapshotInfo,
  facts: HeaderFacts,
  problem: (message: string, extra?: Partial<CheckFinding>) => void,
): void {
  const { geometry } = facts;
  const l1Bytes = info.l1Size * 8;
  if (info.l1Size > QCOW_MAX_L1_SIZE / 8) {
    problem(`L1 table of ${info.l1Size} entries is too large; snapshot table entry corrupted`, {
      hostOffset: info.l1Offset,
    });
    info.l1Readable = false;
  }
  // QEMU flags an unaligned offset whatever the size (a size of 0 may be the damage itself).
  if (!geometry.isClusterAligned(info.l1Offset) || (info.l1Size > 0 && info.l1Offset === 0)) {
    problem(
      `l1_offset=0x${info.l1Offset.toString(16)}: L1 table is not cluster aligned; snapshot table entry corrupted`,
      { hostOffset: info.l1Offset },
    );
    // QEMU skips such a snapshot entirely; so do we (its clusters then look leaked, and repair protects them).
    info.l1Readable = false;
  } else if (info.l1Readable && info.l1Size > 0 && info.l1Offset + l1Bytes > facts.fileSize) {
    problem(
      `L1 table at 0x${info.l1Offset.toString(16)} (${l1Bytes} bytes) runs past the end of the file`,
      { hostOffset: info.l1Offset },
    );
    info.l1Readable = false;
  }
  if (info.diskSize !== undefined && info.diskSize <= BigInt(Number.MAX_SAFE_INTEGER)) {
    const needed = geometry.l1EntriesFor(Number(info.diskSize));
    if (info.l1Size < needed) {
      problem(
        `L1 table has ${info.l1Size} entries but the ${info.diskSize}-byte disk it recorded needs ${needed}`,
      );
    }
  }
  if (!info.l1Readable) info.l1Entries = 0;
}

/** `length` bytes at `offset`, the part past the end of the file as zeros (as QEMU reads it). */
async function readZeroFilled(
  file: BlockDevice,
  offset: number,
  length: number,
  fileSize: number,
): Promise<Buffer> {
  const bytes = Buffer.alloc(length);
  const inFile = Math.max(0, Math.min(length, fileSize - offset));
  if (inFile > 0) await file.read(offset, bytes.subarray(0, inFile));
  return bytes;
}
