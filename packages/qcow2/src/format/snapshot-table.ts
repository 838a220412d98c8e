import { defineStruct, toSafeNumber, u16be, u32be, u64be } from '@x/blockio';
import { Qcow2Error } from '../errors.js';
import { QCOW_MAX_SNAPSHOT_EXTRA_DATA } from './constants.js';

/** Fixed part of a snapshot table entry (qcow2.rst "Snapshots"). */
export const snapshotEntryHeader = defineStruct('qcow2 snapshot table entry', 40, [
  { name: 'l1TableOffset', offset: 0, type: u64be, doc: 'l1_table_offset' },
  { name: 'l1Size', offset: 8, type: u32be, doc: 'l1_size' },
  { name: 'idStrSize', offset: 12, type: u16be, doc: 'id_str_size' },
  { name: 'nameSize', offset: 14, type: u16be, doc: 'name_size' },
  { name: 'dateSec', offset: 16, type: u32be, doc: 'date_sec' },
  { name: 'dateNsec', offset: 20, type: u32be, doc: 'date_nsec' },
  { name: 'vmClockNsec', offset: 24, type: u64be, doc: 'vm_clock_nsec' },
  { name: 'vmStateSize', offset: 32, type: u32be, doc: 'vm_state_size (32-bit)' },
  { name: 'extraDataSize', offset: 36, type: u32be, doc: 'extra_data_size' },
] as const);

/** Known extra data fields (qcow2.rst "Snapshots", extra data). */
export const snapshotExtraData = defineStruct('qcow2 snapshot extra data', 24, [
  { name: 'vmStateSizeLarge', offset: 0, type: u64be, doc: 'vm_state_size_large' },
  { name: 'diskSize', offset: 8, type: u64be, doc: 'disk_size' },
  { name: 'icount', offset: 16, type: u64be, doc: 'icount; all ones = disabled' },
] as const);

export interface Snapshot {
  /** Index in the table. */
  index: number;
  /** Byte offset of this entry in the image. */
  entryOffset: number;
  /** Bytes the entry occupies including padding. */
  entrySize: number;
  l1TableOffset: number;
  l1Size: number;
  id: string;
  name: string;
  dateSec: number;
  dateNsec: number;
  vmClockNsec: bigint;
  vmStateSize: bigint;
  /** Virtual disk size at snapshot time (absent in old v2 snapshots). */
  diskSize: bigint | undefined;
  icount: bigint | undefined;
  /** The raw extra data, kept so rewrites preserve fields we do not know. */
  extraData: Uint8Array;
}

/**
 * Parses `count` snapshot entries from `table` (the bytes at snapshots_offset).
 * Throws CORRUPT naming the entry when one runs past the table or claims more
 * extra data than QEMU allows.
 */
export function parseSnapshotTable(
  table: Uint8Array,
  count: number,
  tableOffset: number,
  path?: string,
): Snapshot[] {
  const snapshots: Snapshot[] = [];
  let at = 0;
  for (let index = 0; index < count; index++) {
    const where = { path, offset: tableOffset + at, structure: `snapshot table entry ${index}` };
    if (at + snapshotEntryHeader.size > table.byteLength) {
      throw new Qcow2Error('CORRUPT', `snapshot table ends inside entry ${index}`, where);
    }
    const entry = snapshotEntryHeader.decode(table, at);
    if (entry.extraDataSize > QCOW_MAX_SNAPSHOT_EXTRA_DATA) {
      throw new Qcow2Error(
        'CORRUPT',
        `extra data of ${entry.extraDataSize} bytes exceeds the ${QCOW_MAX_SNAPSHOT_EXTRA_DATA}-byte limit`,
        where,
      );
    }
    const extraStart = at + snapshotEntryHeader.size;
    const idStart = extraStart + entry.extraDataSize;
    const nameStart = idStart + entry.idStrSize;
    const end = nameStart + entry.nameSize;
    if (end > table.byteLength) {
      throw new Qcow2Error(
        'CORRUPT',
        `snapshot table entry ${index} runs past the end of the table`,
        where,
      );
    }
    const extraData = table.slice(extraStart, idStart);
    const extra = decodeExtraData(extraData);
    snapshots.push({
      index,
      entryOffset: tableOffset + at,
      entrySize: Math.ceil((end - at) / 8) * 8,
      l1TableOffset: toSafeNumber(entry.l1TableOffset, 'snapshot L1 table offset', where),
      l1Size: entry.l1Size,
      id: snapshotString(table.subarray(idStart, nameStart)),
      name: snapshotString(table.subarray(nameStart, end)),
      dateSec: entry.dateSec,
      dateNsec: entry.dateNsec,
      vmClockNsec: entry.vmClockNsec,
      vmStateSize: extra.vmStateSizeLarge ?? BigInt(entry.vmStateSize),
      diskSize: extra.diskSize,
      icount: extra.icount,
      extraData,
    });
    at = Math.ceil(end / 8) * 8;
  }
  return snapshots;
}

/**
 * An id or name as QEMU reads it: a C string, so it ends at the first NUL byte
 * (bytes read as zeros past the end of a cut table give an empty id, as in qemu-img).
 */
export function snapshotString(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return Buffer.from(nul === -1 ? bytes : bytes.subarray(0, nul)).toString('utf8');
}

function decodeExtraData(extra: Uint8Array): {
  vmStateSizeLarge?: bigint;
  diskSize?: bigint;
  icount?: bigint;
} {
  const padded = new Uint8Array(snapshotExtraData.size);
  padded.set(extra.subarray(0, snapshotExtraData.size));
  const decoded = snapshotExtraData.decode(padded, 0);
  return {
    ...(extra.byteLength >= 8 ? { vmStateSizeLarge: decoded.vmStateSizeLarge } : {}),
    ...(extra.byteLength >= 16 ? { diskSize: decoded.diskSize } : {}),
    ...(extra.byteLength >= 24 ? { icount: decoded.icount } : {}),
  };
}

/** Encodes snapshot entries into one table (each entry padded to 8 bytes). */
export function encodeSnapshotTable(
  snapshots: Array<Omit<Snapshot, 'index' | 'entryOffset' | 'entrySize'>>,
): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const snapshot of snapshots) {
    const id = Buffer.from(snapshot.id, 'utf8');
    const name = Buffer.from(snapshot.name, 'utf8');
    const extra = snapshot.extraData;
    const length = snapshotEntryHeader.size + extra.byteLength + id.byteLength + name.byteLength;
    const entry = new Uint8Array(Math.ceil(length / 8) * 8);
    snapshotEntryHeader.encode(
      {
        l1TableOffset: BigInt(snapshot.l1TableOffset),
        l1Size: snapshot.l1Size,
        idStrSize: id.byteLength,
        nameSize: name.byteLength,
        dateSec: snapshot.dateSec,
        dateNsec: snapshot.dateNsec,
        vmClockNsec: snapshot.vmClockNsec,
        vmStateSize: snapshot.vmStateSize > 0xffffffffn ? 0 : Number(snapshot.vmStateSize),
        extraDataSize: extra.byteLength,
      },
      entry,
      0,
    );
    entry.set(extra, snapshotEntryHeader.size);
    entry.set(id, snapshotEntryHeader.size + extra.byteLength);
    entry.set(name, snapshotEntryHeader.size + extra.byteLength + id.byteLength);
    parts.push(entry);
  }
  return Buffer.concat(parts);
}

/** Extra data as QEMU 7.2 writes it: vm_state_size_large, disk_size, icount. */
export function encodeSnapshotExtraData(fields: {
  vmStateSize: bigint;
  diskSize: bigint;
  icount: bigint;
}): Uint8Array {
  return snapshotExtraData.encode({
    vmStateSizeLarge: fields.vmStateSize,
    diskSize: fields.diskSize,
    icount: fields.icount,
  });
}
