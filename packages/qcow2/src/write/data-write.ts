import { allocHostOffset, type L2Meta } from './host-offset.js';
import { linkL2 } from './link-l2.js';
import type { WriterState } from './writer-state.js';

/** The most one iteration hands to the allocator (QEMU's INT_MAX per part). */
const MAX_PART = 0x7fffffff;

/**
 * Writes guest data: each part goes to a host-contiguous run of clusters we
 * may overwrite in place or newly allocated ones, the uncovered parts of new
 * clusters are filled from what the guest saw before (backing file, shared
 * or compressed cluster, or zeros), then the L2 entries are pointed at them
 * (QEMU's qcow2_co_pwritev_part()).
 */
export async function writeGuestData(
  writer: WriterState,
  offset: number,
  data: Uint8Array,
): Promise<void> {
  let done = 0;
  while (done < data.byteLength) {
    const want = Math.min(data.byteLength - done, MAX_PART);
    const part = await allocHostOffset(writer, offset + done, want);
    await writeRun(writer, data.subarray(done, done + part.bytes), part.hostOffset, part.metas);
    done += part.bytes;
  }
}

async function writeRun(
  writer: WriterState,
  data: Uint8Array,
  hostOffset: number,
  metas: L2Meta[],
): Promise<void> {
  // Read everything copy-on-write needs while the old mapping is still in place.
  const cow: Array<{ at: number; bytes: Buffer }> = [];
  for (const meta of metas) {
    for (const region of [meta.cowStart, meta.cowEnd]) {
      if (region.nbBytes === 0) continue;
      cow.push({
        at: meta.allocOffset + region.offset,
        bytes: await writer.readGuestForCow(meta.offset + region.offset, region.nbBytes),
      });
    }
  }
  await writer.dataFile.write(hostOffset, data);
  for (const region of cow) await writer.dataFile.write(region.at, region.bytes);
  // QEMU links the newest allocation first.
  for (let i = metas.length - 1; i >= 0; i--) await linkL2(writer, metas[i] as L2Meta);
}
