import type { SnapshotRecord } from './snapshot-record.js';

/** One internal snapshot, with the facts `qemu-img snapshot -l` shows. */
export interface SnapshotEntry {
  id: string;
  name: string;
  vmStateSize: number;
  dateSec: number;
  dateNsec: number;
  vmClockNsec: number;
  icount: bigint;
  diskSize: number;
  l1TableOffset: number;
  l1Size: number;
}

/** The public view of a writer's snapshot record. */
export function snapshotEntry(record: SnapshotRecord): SnapshotEntry {
  return {
    id: record.id,
    name: record.name,
    vmStateSize: Number(record.vmStateSize),
    dateSec: record.dateSec,
    dateNsec: record.dateNsec,
    vmClockNsec: Number(record.vmClockNsec),
    icount: record.icount,
    diskSize: Number(record.diskSize),
    l1TableOffset: record.l1TableOffset,
    l1Size: record.l1Size,
  };
}
