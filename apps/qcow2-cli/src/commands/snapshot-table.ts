/*
 * The human snapshot table, laid out as qemu-img lays it out (QEMU's
 * bdrv_snapshot_dump): `qcow2 snapshot list` and `qcow2 info` print the same.
 */

export interface SnapshotRow {
  id: string;
  name: string;
  vmStateSize: number;
  dateSec: number;
  vmClockNsec: number;
  /** Absent (or 2^64 - 1) when the snapshot has no instruction count. */
  icount: bigint | number | undefined;
}

/** "%-10s%-17s%8s%20s%13s%11s" */
export const SNAPSHOT_TABLE_HEADER =
  'ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT';

/** "%-9s %-16s %8s%20s%13s%11s" with the date in local time, as qemu-img prints it. */
export function formatSnapshotRow(row: SnapshotRow): string {
  const date = new Date(row.dateSec * 1000);
  const two = (value: number) => String(value).padStart(2, '0');
  const dateText = `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
  const seconds = Math.floor(row.vmClockNsec / 1e9);
  const clock = `${two(Math.floor(seconds / 3600))}:${two(Math.floor(seconds / 60) % 60)}:${two(seconds % 60)}.${String(Math.floor(row.vmClockNsec / 1e6) % 1000).padStart(3, '0')}`;
  const icount =
    row.icount === undefined || BigInt(row.icount) === 0xffffffffffffffffn
      ? ''
      : String(row.icount);
  return `${row.id.padEnd(9)} ${row.name.padEnd(16)} ${sizeToString(row.vmStateSize).padStart(8)}${dateText.padStart(20)}${clock.padStart(13)}${icount.padStart(11)}`;
}

/** QEMU's size_to_str(): three significant digits and a binary unit ("0 B", "1.5 KiB"). */
function sizeToString(value: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  if (value === 0) return '0 B';
  // frexp(value / (1000 / 1024)): the unit switches at 1000, not 1024.
  const exponent = Math.floor(Math.log2(value / (1000 / 1024))) + 1;
  const index = Math.min(Math.max(Math.floor((exponent - 1) / 10), 0), units.length - 1);
  const scaled = value / 2 ** (index * 10);
  return `${Number.parseFloat(scaled.toPrecision(3))} ${units[index]}`;
}
