/** A snapshot as the writer keeps it (QEMU's QCowSnapshot). */
export interface SnapshotRecord {
  id: string;
  name: string;
  l1TableOffset: number;
  l1Size: number;
  dateSec: number;
  dateNsec: number;
  vmClockNsec: bigint;
  vmStateSize: bigint;
  diskSize: bigint;
  icount: bigint;
  /** Extra data beyond the 24 bytes QEMU knows, kept as it was. */
  unknownExtraData: Uint8Array;
}
