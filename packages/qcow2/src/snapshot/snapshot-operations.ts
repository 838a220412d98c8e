import { BlockIoError } from '@x/blockio';
import { Qcow2Error } from '../errors.js';
import { QCOW_MAX_L1_SIZE, QCOW_MAX_SNAPSHOTS } from '../format/constants.js';
import type { CreateSnapshotOptions } from '../image/write-path.js';
import { growL1Table } from '../write/l2-tables.js';
import type { WriterState } from '../write/writer-state.js';
import { findSnapshot } from './find-snapshot.js';
import { updateSnapshotRefcount } from './snapshot-refcount.js';
import { type SnapshotRecord, writeSnapshotTable } from './snapshot-table-writer.js';

/**
 * Takes an internal snapshot (QEMU's qcow2_snapshot_create()): a copy of the
 * active L1 table, one more reference on every L2 table and cluster it
 * reaches (which clears COPIED in the active tables), and a rewritten
 * snapshot table with the new entry (id = highest numeric id + 1, extra data
 * as QEMU 7.2 writes it: vm state size, disk size, icount 0).
 */
export async function createSnapshotIn(
  writer: WriterState,
  name: string,
  options: CreateSnapshotOptions = {},
): Promise<SnapshotRecord> {
  const where = { path: writer.file.name, structure: 'snapshot table' };
  if (writer.hasDataFile) {
    throw new Qcow2Error(
      'UNSUPPORTED',
      'images with an external data file cannot have internal snapshots',
      where,
    );
  }
  const now = Date.now();
  const date = options.date ?? { sec: Math.floor(now / 1000), nsec: (now % 1000) * 1_000_000 };
  // Checked before anything is written: a bad date found at the snapshot table would
  // leave the L1 copy and the references already taken behind.
  if (!isSnapshotDate(date)) {
    throw new BlockIoError(
      'INVALID_ARGUMENT',
      `snapshot date must be { sec, nsec } with sec a whole number 0 … 2^32 − 1 and nsec 0 … 999999999 (got ${describe(date)})`,
      where,
    );
  }
  const records = writer.snapshotRecords();
  if (records.length >= QCOW_MAX_SNAPSHOTS) {
    throw new Qcow2Error(
      'TOO_LARGE',
      `the image already has ${records.length} snapshots, QEMU's limit`,
      where,
    );
  }
  await writer.checkRefcountHeadroom();
  const id = String(
    records.reduce((max, record) => Math.max(max, Number.parseInt(record.id, 10) || 0), 0) + 1,
  );
  const l1 = writer.l1;
  const l1Offset = await writer.refcounts.allocClusters(l1.size * 8);
  if (l1.size > 0) await writer.file.write(l1Offset, Buffer.from(l1.bytes));
  await updateSnapshotRefcount(writer, l1.offset, l1.size, 1);
  const record: SnapshotRecord = {
    id,
    name,
    l1TableOffset: l1Offset,
    l1Size: l1.size,
    dateSec: date.sec,
    dateNsec: date.nsec,
    vmClockNsec: 0n,
    vmStateSize: 0n,
    diskSize: BigInt(writer.image.size),
    icount: 0n,
    unknownExtraData: new Uint8Array(0),
  };
  const next = [...records, record];
  await writeSnapshotTable(writer, next);
  writer.setSnapshotRecords(next);
  return record;
}

/**
 * Reverts the active state to a snapshot (QEMU's qcow2_snapshot_goto()): the
 * snapshot's L1 table is copied over the active one after taking references
 * for it, the references of the old active tables are dropped, and COPIED is
 * recomputed from the refcounts.
 */
export async function applySnapshotIn(
  writer: WriterState,
  idOrName: string,
): Promise<SnapshotRecord> {
  const record = findSnapshot(writer.snapshotRecords(), idOrName, writer.file.name);
  validateSnapshotL1(writer, record);
  const diskSize = Number(record.diskSize);
  if (diskSize !== writer.image.size) {
    if (diskSize < writer.image.size) {
      throw new Qcow2Error(
        'UNSUPPORTED',
        'the snapshot is of a smaller disk; shrinking is not supported',
        {
          path: writer.file.name,
          structure: 'snapshot table',
        },
      );
    }
    await writer.growTo(diskSize);
  }
  await growL1Table(writer, record.l1Size, true);
  const active = writer.l1;
  const snapshotL1 = Buffer.alloc(active.size * 8);
  if (record.l1Size > 0)
    await writer.file.read(record.l1TableOffset, snapshotL1.subarray(0, record.l1Size * 8));
  await updateSnapshotRefcount(writer, record.l1TableOffset, record.l1Size, 1);
  await writer.file.write(active.offset, snapshotL1);
  let failure: unknown;
  try {
    await updateSnapshotRefcount(writer, active.offset, active.size, -1);
  } catch (error) {
    failure = error;
  }
  // The in-memory table follows what is on disk even if the decrement failed.
  snapshotL1.copy(active.bytes);
  if (failure !== undefined) throw failure;
  await updateSnapshotRefcount(writer, active.offset, active.size, 0);
  return record;
}

/**
 * Deletes a snapshot (QEMU's qcow2_snapshot_delete()): the table is rewritten
 * without it, its references are dropped and its L1 table freed, then COPIED
 * is recomputed in the active tables.
 */
export async function deleteSnapshotIn(
  writer: WriterState,
  idOrName: string,
): Promise<SnapshotRecord> {
  const records = writer.snapshotRecords();
  const record = findSnapshot(records, idOrName, writer.file.name);
  validateSnapshotL1(writer, record);
  const next = records.filter((other) => other !== record);
  await writeSnapshotTable(writer, next);
  writer.setSnapshotRecords(next);
  await updateSnapshotRefcount(writer, record.l1TableOffset, record.l1Size, -1);
  await writer.refcounts.freeClusters(record.l1TableOffset, record.l1Size * 8, 'snapshot');
  await updateSnapshotRefcount(writer, writer.l1.offset, writer.l1.size, 0);
  return record;
}

/** QEMU's qcow2_validate_table() for a snapshot's L1 table. */
function validateSnapshotL1(writer: WriterState, record: SnapshotRecord): void {
  const where = {
    path: writer.file.name,
    offset: record.l1TableOffset,
    structure: `L1 table of snapshot ${record.id}`,
  };
  if (record.l1Size * 8 > QCOW_MAX_L1_SIZE) {
    throw new Qcow2Error(
      'TOO_LARGE',
      `snapshot ${record.id}'s L1 table is larger than QEMU's 32 MiB limit`,
      where,
    );
  }
  if (record.l1TableOffset % writer.geometry.clusterSize !== 0) {
    throw new Qcow2Error(
      'CORRUPT',
      `snapshot ${record.id}'s L1 table is not cluster aligned`,
      where,
    );
  }
  if (record.l1TableOffset + record.l1Size * 8 > writer.file.size) {
    throw new Qcow2Error(
      'CORRUPT',
      `snapshot ${record.id}'s L1 table lies beyond the end of the file`,
      where,
    );
  }
}

function isSnapshotDate(date: unknown): date is { sec: number; nsec: number } {
  if (typeof date !== 'object' || date === null) return false;
  const { sec, nsec } = date as { sec?: unknown; nsec?: unknown };
  return (
    Number.isInteger(sec) &&
    (sec as number) >= 0 &&
    (sec as number) <= 0xffffffff &&
    Number.isInteger(nsec) &&
    (nsec as number) >= 0 &&
    (nsec as number) <= 999_999_999
  );
}

function describe(value: unknown): string {
  if (value instanceof Date) return 'a Date';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
