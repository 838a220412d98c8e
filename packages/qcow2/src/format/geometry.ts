import { MIN_EXTENDED_L2_CLUSTER_BITS } from './constants.js';

/**
 * Sizes derived from the header (qcow2.rst "Host cluster management" and
 * "Cluster mapping"): how guest offsets map to L1/L2 indices and how host
 * clusters map to refcount table and block indices.
 */
export class Qcow2Geometry {
  readonly clusterBits: number;
  readonly clusterSize: number;
  readonly extendedL2: boolean;
  /** Bytes per L2 entry: 8, or 16 with extended L2. */
  readonly l2EntrySize: number;
  /** Entries per L2 table. */
  readonly l2Entries: number;
  /** Guest bytes one L2 table maps. */
  readonly l2Coverage: number;
  readonly subclustersPerCluster: number;
  readonly subclusterSize: number;
  readonly refcountOrder: number;
  readonly refcountBits: number;
  /** Entries per refcount block. */
  readonly refcountBlockEntries: number;
  /** Host bytes one refcount block covers. */
  readonly refcountBlockCoverage: number;

  constructor(clusterBits: number, refcountOrder: number, extendedL2: boolean) {
    this.clusterBits = clusterBits;
    this.clusterSize = 2 ** clusterBits;
    this.extendedL2 = extendedL2;
    this.l2EntrySize = extendedL2 ? 16 : 8;
    this.l2Entries = this.clusterSize / this.l2EntrySize;
    this.l2Coverage = this.l2Entries * this.clusterSize;
    this.subclustersPerCluster = extendedL2 ? 32 : 1;
    this.subclusterSize = this.clusterSize / this.subclustersPerCluster;
    this.refcountOrder = refcountOrder;
    this.refcountBits = 2 ** refcountOrder;
    this.refcountBlockEntries = (this.clusterSize * 8) / this.refcountBits;
    this.refcountBlockCoverage = this.refcountBlockEntries * this.clusterSize;
  }

  static supportsExtendedL2(clusterBits: number): boolean {
    return clusterBits >= MIN_EXTENDED_L2_CLUSTER_BITS;
  }

  l1Index(guestOffset: number): number {
    return Math.floor(guestOffset / this.l2Coverage);
  }

  l2Index(guestOffset: number): number {
    return Math.floor(guestOffset / this.clusterSize) % this.l2Entries;
  }

  /** Offset within the cluster. */
  clusterOffset(offset: number): number {
    return offset % this.clusterSize;
  }

  /** L1 entries needed to map `virtualSize` bytes. */
  l1EntriesFor(virtualSize: number): number {
    return Math.ceil(virtualSize / this.l2Coverage);
  }

  /** Host cluster index of a host byte offset. */
  clusterIndex(hostOffset: number): number {
    return Math.floor(hostOffset / this.clusterSize);
  }

  refcountTableIndex(clusterIndex: number): number {
    return Math.floor(clusterIndex / this.refcountBlockEntries);
  }

  refcountBlockIndex(clusterIndex: number): number {
    return clusterIndex % this.refcountBlockEntries;
  }

  isClusterAligned(offset: number): boolean {
    return offset % this.clusterSize === 0;
  }
}
