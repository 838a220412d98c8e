import { type ChainBlockStatus, STATUS_DATA, STATUS_ZERO } from '../map/block-status.js';

export const SECTOR = 512;

/** qemu-img's BDRV_REQUEST_MAX_SECTORS: the most one block-status query asks about. */
const REQUEST_MAX_SECTORS = Math.floor(0x7fffffff / SECTOR);

/** One piece qemu-img convert reads and writes as a unit (sector units). */
export interface ConvertChunk {
  sector: number;
  sectors: number;
  /**
   * `data` is read and written (zero runs inside it skipped, or with a target
   * backing file written as zeros); `zero` is skipped (written as zeros with a
   * target backing file); `backing` is left unallocated so the target's
   * backing file shows through (only with one).
   */
  status: 'data' | 'zero' | 'backing';
}

export interface ChunkPlanOptions {
  /** Sectors of the source (its size rounded up to 512). */
  totalSectors: number;
  /**
   * Block-status runs are cut back to this multiple of sectors so the next
   * query starts aligned: the top source image's cluster size (1 for raw).
   */
  sourceAlignment: number;
  /** The most a data chunk holds (qemu-img's buf_sectors, 2 MiB). */
  bufferSectors: number;
  /** Compressed output: chunks are whole target clusters of this many sectors. */
  compressedClusterSectors?: number | undefined;
  /**
   * The target has a backing file (qemu-img convert -B) of this many sectors:
   * only the source's top layer is asked (what it leaves unallocated stays
   * unallocated), and past the backing file's end zeros need no writing.
   */
  targetBackingSectors?: number | undefined;
}

/**
 * The chunks qemu-img 7.2's convert_iteration_sectors() cuts the source into,
 * in order. They decide where each write request to the target starts and
 * ends, and so where the target's allocations fall; reproducing them is what
 * makes our output match qemu-img's byte for byte.
 *
 * A block-status query at the current sector gives a run of data or zeros
 * (unallocated counts as data without a target backing file, but QEMU reports
 * it as zero when nothing in the chain holds it); the run is trimmed to the
 * source alignment and then handed out in buffer-sized pieces. With
 * compression every chunk is one whole target cluster: runs are cut down to
 * whole clusters, and a shorter remainder becomes a data chunk of a cluster.
 */
export async function* convertChunks(
  chain: ChainBlockStatus,
  options: ChunkPlanOptions,
): AsyncIterable<ConvertChunk> {
  const { totalSectors, sourceAlignment, bufferSectors } = options;
  const clusterSectors = options.compressedClusterSectors;
  let sector = 0;
  let nextStatusSector = 0;
  let status: ConvertChunk['status'] = 'data';
  const backingSectors = options.targetBackingSectors;
  while (sector < totalSectors) {
    let sectors = Math.min(totalSectors - sector, REQUEST_MAX_SECTORS);
    // From the end of the target's backing file on, zeros are handled differently: split there.
    let pastBacking = false;
    if (backingSectors !== undefined) {
      if (sector >= backingSectors) pastBacking = true;
      else if (sector + sectors > backingSectors) sectors = backingSectors - sector;
    }
    if (nextStatusSector <= sector) {
      const answer =
        backingSectors === undefined
          ? await chain.status(sector * SECTOR, sectors * SECTOR)
          : await chain.topStatus(sector * SECTOR, sectors * SECTOR);
      sectors = Math.ceil(answer.length / SECTOR);
      const tail = (sector + sectors) % sourceAlignment;
      if (sectors > tail) sectors -= tail;
      if (answer.flags & STATUS_ZERO) status = pastBacking ? 'backing' : 'zero';
      else if (answer.flags & STATUS_DATA) status = 'data';
      else status = backingSectors === undefined ? 'data' : 'backing';
      nextStatusSector = sector + sectors;
    }
    sectors = Math.min(sectors, nextStatusSector - sector);
    if (status === 'data') sectors = Math.min(sectors, bufferSectors);
    if (clusterSectors !== undefined) {
      if (sectors < clusterSectors) {
        sectors = Math.min(clusterSectors, totalSectors - sector);
        status = 'data';
      } else {
        sectors -= sectors % clusterSectors;
      }
    }
    yield { sector, sectors, status };
    sector += sectors;
  }
}
