import { Qcow2Error } from '../errors.js';
import { QCOW_MAX_SNAPSHOTS_SIZE } from '../format/constants.js';
import {
  encodeSnapshotExtraData,
  encodeSnapshotTable,
  parseSnapshotTable,
  type Snapshot,
} from '../format/snapshot-table.js';
import type { WriterState } from '../write/writer-state.js';
import type { SnapshotRecord } from './snapshot-record.js';

export type { SnapshotRecord } from './snapshot-record.js';

const KNOWN_EXTRA = 24;

/** The records of the snapshots read at open, with QEMU's defaults for missing extra data. */
export function snapshotRecords(snapshots: Snapshot[], virtualSize: number): SnapshotRecord[] {
  return snapshots.map((snapshot) => ({
    id: snapshot.id,
    name: snapshot.name,
    l1TableOffset: snapshot.l1TableOffset,
    l1Size: snapshot.l1Size,
    dateSec: snapshot.dateSec,
    dateNsec: snapshot.dateNsec,
    vmClockNsec: snapshot.vmClockNsec,
    vmStateSize: snapshot.vmStateSize,
    diskSize: snapshot.diskSize ?? BigInt(virtualSize),
    icount: snapshot.icount ?? 0xffffffffffffffffn,
    unknownExtraData: snapshot.extraData.slice(
      Math.min(KNOWN_EXTRA, snapshot.extraData.byteLength),
    ),
  }));
}

/** Bytes the table of `records` occupies, without padding after the last entry (QEMU's snapshots_size). */
export function snapshotTableSize(records: SnapshotRecord[]): number {
  let offset = 0;
  for (const record of records) {
    offset = Math.ceil(offset / 8) * 8;
    offset += 40 + KNOWN_EXTRA + record.unknownExtraData.byteLength;
    offset += Buffer.byteLength(record.id) + Buffer.byteLength(record.name);
  }
  return offset;
}

/**
 * Writes the snapshot table to newly allocated clusters, points the header at
 * it and frees the old one (QEMU's qcow2_write_snapshots()).
 */
export async function writeSnapshotTable(
  writer: WriterState,
  records: SnapshotRecord[],
): Promise<void> {
  const size = snapshotTableSize(records);
  if (size > QCOW_MAX_SNAPSHOTS_SIZE) {
    throw new Qcow2Error('TOO_LARGE', "the snapshot table would exceed QEMU's 64 MiB limit", {
      path: writer.file.name,
      structure: 'snapshot table',
    });
  }
  const offset = await writer.refcounts.allocClusters(size);
  await writer.flushCaches();
  const table = encodeSnapshotTable(
    records.map((record) => ({
      l1TableOffset: record.l1TableOffset,
      l1Size: record.l1Size,
      id: record.id,
      name: record.name,
      dateSec: record.dateSec,
      dateNsec: record.dateNsec,
      vmClockNsec: record.vmClockNsec,
      vmStateSize: record.vmStateSize,
      diskSize: record.diskSize,
      icount: record.icount,
      extraData: Buffer.concat([
        encodeSnapshotExtraData({
          vmStateSize: record.vmStateSize,
          diskSize: record.diskSize,
          icount: record.icount,
        }),
        record.unknownExtraData,
      ]),
    })),
  );
  if (size > 0) await writer.file.write(offset, table.subarray(0, size));
  await writer.flushCaches();
  const fields = Buffer.alloc(12);
  fields.writeUInt32BE(records.length, 0);
  fields.writeBigUInt64BE(BigInt(offset), 4);
  await writer.file.write(60, fields);

  const header = writer.state.header;
  const oldOffset = Number(header.snapshotsOffset);
  const oldSize = writer.snapshotTableBytes;
  header.nbSnapshots = records.length;
  header.snapshotsOffset = BigInt(offset);
  writer.snapshotTableBytes = size;
  writer.image.metadata.snapshotsOffset = offset;
  writer.image.metadata.header.nbSnapshots = records.length;
  writer.image.metadata.header.snapshotsOffset = BigInt(offset);
  writer.image.metadata.snapshots =
    records.length === 0 ? [] : parseSnapshotTable(table, records.length, offset, writer.file.name);
  await writer.refcounts.freeClusters(oldOffset, oldSize, 'snapshot');
}
