/** A pool as the inventory knows it: by id, and by name when an OSD map or the user names it. */
export interface PoolInfo {
  readonly id: number;
  readonly name: string | undefined;
}

export interface SnapshotInfo {
  readonly id: bigint;
  readonly name: string;
  /** The image's size at the snapshot (its own, which may differ from the head's). */
  readonly size: number;
}

/** An image found in a pool (and RBD namespace). */
export interface ImageRef {
  readonly pool: PoolInfo;
  /** RBD namespace; '' for the default one. */
  readonly namespace: string;
  readonly name: string;
  readonly format: 1 | 2;
  /** Format 2 image id (`rbd_id.<name>`, `rbd_directory`). */
  readonly id?: string | undefined;
}

/** What `lookup` tells: enough to rebuild the image and each snapshot. */
export interface ImageInfo extends ImageRef {
  /** Data objects are `<prefix>.<index in hex>`. */
  readonly prefix: string;
  readonly order: number;
  readonly size: number;
  readonly features: bigint | undefined;
  readonly snapSeq: bigint | undefined;
  /** Ascending by id. */
  readonly snapshots: readonly SnapshotInfo[];
  /** Where each fact came from when not from the image's own metadata (--prefix…). */
  readonly inferred: boolean;
  /** Things found wrong or unsupported in the metadata (reported, not fatal). */
  readonly problems: readonly string[];
}

/** `<pool>/[<namespace>/]<image>[@<snap>]`, as the CLI takes it. */
export interface ImageSpec {
  readonly pool: string;
  readonly namespace: string;
  readonly image: string;
  readonly snapshot: string | undefined;
}

/** Object size of an image (1 << order). */
export function objectSize(image: { order: number }): number {
  return 2 ** image.order;
}

/** The name of data object `index` of an image (format 1: 12 hex digits, format 2: 16). */
export function dataObjectName(image: { prefix: string; format: 1 | 2 }, index: number): string {
  return `${image.prefix}.${index.toString(16).padStart(image.format === 1 ? 12 : 16, '0')}`;
}
