/**
 * How many refcount blocks (and refcount table clusters) it takes to count
 * `clusters` host clusters plus the refcount structures themselves: the fixed
 * point QEMU's qcow2_refcount_metadata_size() finds. With `generousIncrease`
 * the count is redone for half the table again, as QEMU does when it grows the
 * table so it need not grow again soon.
 */
export function refcountMetadataSize(
  clusters: number,
  clusterSize: number,
  refcountOrder: number,
  generousIncrease: boolean,
): { refblocks: number; tableClusters: number } {
  const blocksPerTableCluster = clusterSize / 8;
  const refcountsPerBlock = (clusterSize * 8) / 2 ** refcountOrder;
  let counted = clusters;
  let generous = generousIncrease;
  let table = 0;
  let blocks = 0;
  let total = 0;
  let last: number;
  do {
    last = total;
    blocks = Math.ceil((counted + table + blocks) / refcountsPerBlock);
    table = Math.ceil(blocks / blocksPerTableCluster);
    total = counted + blocks + table;
    if (total === last && generous) {
      counted += Math.ceil(table / 2);
      total = 0; // force another round
      generous = false;
    }
  } while (total !== last);
  return { refblocks: blocks, tableClusters: table };
}
