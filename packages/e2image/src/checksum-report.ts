import type { WarningListener } from './errors.js';

export type ChecksummedStructure =
  | 'superblock'
  | 'group descriptor'
  | 'inode'
  | 'extent block'
  | 'directory block'
  | 'block bitmap'
  | 'inode bitmap'
  | 'xattr block';

export interface ChecksumFailure {
  readonly structure: ChecksummedStructure;
  readonly group?: number;
  readonly inode?: number;
  readonly block?: number;
  readonly stored: number;
  readonly computed: number;
}

/** How many failures are kept with details; the counts keep going. */
const KEPT_FAILURES = 100;

/**
 * metadata_csum results: checked and failed counts per structure, and the first
 * failures in detail. Checksums are verified and reported, never required.
 */
export class ChecksumReport {
  readonly checked: Partial<Record<ChecksummedStructure, number>> = {};
  readonly failedCounts: Partial<Record<ChecksummedStructure, number>> = {};
  readonly failures: ChecksumFailure[] = [];
  readonly #onWarning: WarningListener | undefined;

  constructor(onWarning?: WarningListener) {
    this.#onWarning = onWarning;
  }

  get failed(): number {
    let total = 0;
    for (const count of Object.values(this.failedCounts)) total += count ?? 0;
    return total;
  }

  record(
    structure: ChecksummedStructure,
    ok: boolean,
    detail: Omit<ChecksumFailure, 'structure'>,
  ): void {
    this.checked[structure] = (this.checked[structure] ?? 0) + 1;
    if (ok) return;
    this.failedCounts[structure] = (this.failedCounts[structure] ?? 0) + 1;
    const failure = { structure, ...detail };
    if (this.failures.length < KEPT_FAILURES) this.failures.push(failure);
    this.#onWarning?.({
      code: 'CHECKSUM',
      message: `${structure}${where(detail)} checksum mismatch: stored 0x${detail.stored.toString(16)}, computed 0x${detail.computed.toString(16)}`,
      ...(detail.group === undefined ? {} : { group: detail.group }),
      ...(detail.inode === undefined ? {} : { inode: detail.inode }),
      ...(detail.block === undefined ? {} : { block: detail.block }),
    });
  }

  toJSON(): Record<string, unknown> {
    return { checked: this.checked, failed: this.failedCounts, failures: this.failures };
  }
}

function where(detail: { group?: number; inode?: number; block?: number }): string {
  const parts: string[] = [];
  if (detail.group !== undefined) parts.push(`group ${detail.group}`);
  if (detail.inode !== undefined) parts.push(`inode ${detail.inode}`);
  if (detail.block !== undefined) parts.push(`block ${detail.block}`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}
