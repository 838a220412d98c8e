/**
 * Sizes of the refcount structures that close a sequentially built image.
 *
 * Every cluster of such an image is used exactly once (header, L1, data, L2
 * tables, and the refcount table and blocks themselves), so the refcounts are
 * "1" for clusters [0, total) and the only question is how many clusters the
 * refcount structures need to cover themselves as well: a fixpoint, reached in
 * a few steps because each step can only grow them.
 */
export interface RefcountLayout {
  /** Clusters of the refcount table (8-byte entries). */
  tableClusters: number;
  /** Refcount blocks (16-bit entries). */
  blocks: number;
  /** Clusters of the whole image, the refcount structures included. */
  totalClusters: number;
}

/** `usedClusters`: clusters in use before the refcount structures (which follow them). */
export function refcountLayout(usedClusters: number, clusterSize: number): RefcountLayout {
  const refcountsPerBlock = clusterSize / 2;
  const tableEntriesPerCluster = clusterSize / 8;
  let blocks = 0;
  let tableClusters = 0;
  for (;;) {
    const totalClusters = usedClusters + tableClusters + blocks;
    const needBlocks = Math.ceil(totalClusters / refcountsPerBlock);
    const needTable = Math.ceil(needBlocks / tableEntriesPerCluster);
    if (needBlocks === blocks && needTable === tableClusters) {
      return { tableClusters, blocks, totalClusters };
    }
    blocks = needBlocks;
    tableClusters = needTable;
  }
}
