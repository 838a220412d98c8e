/**
 * The part of `TableCache` the writer uses. Refcount blocks and L2 tables both
 * live in one; the writer only relies on these operations.
 */
export interface TableStore {
  get(offset: number): Promise<Buffer>;
  /** The table if it is resident, without loading or reordering anything. */
  peek(offset: number): Buffer | undefined;
  put(offset: number, table: Buffer, options?: { dirty?: boolean }): Promise<void>;
  markDirty(offset: number): void;
  /** Drops a table without writing it back (its cluster was freed). */
  discard(offset: number): Promise<void>;
  flush(): Promise<void>;
}

/**
 * Why clusters are freed. QEMU passes frees of these kinds down to the file as
 * discards by default (pass-discard-request and pass-discard-snapshot are on,
 * pass-discard-other is off), so the freed bytes read as zeros afterwards.
 */
export type DiscardType = 'never' | 'request' | 'snapshot' | 'other' | 'always';

export const PASS_DISCARD: Readonly<Record<DiscardType, boolean>> = {
  never: false,
  request: true,
  snapshot: true,
  other: false,
  // QCOW2_DISCARD_ALWAYS: shrinking passes every freed cluster down.
  always: true,
};
