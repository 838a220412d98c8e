import { allocHostOffset } from './host-offset.js';
import { linkL2, performCow } from './link-l2.js';
import type { WriterState } from './writer-state.js';

/**
 * Allocates host clusters (and L2 tables) for guest range [offset, end)
 * without writing data, then makes the file long enough to hold the last of
 * them (QEMU's preallocate_co() for preallocation=metadata).
 */
export async function preallocateMetadata(
  writer: WriterState,
  offset: number,
  end: number,
): Promise<void> {
  const clusterSize = writer.geometry.clusterSize;
  const maxPart = 0x7fffffff - (0x7fffffff % clusterSize);
  let position = offset;
  let hostOffset = 0;
  let current = 0;
  while (position < end) {
    current = Math.min(end - position, maxPart);
    const part = await allocHostOffset(writer, position, current);
    current = part.bytes;
    hostOffset = part.hostOffset;
    for (let i = part.metas.length - 1; i >= 0; i--) {
      const meta = part.metas[i];
      if (!meta) continue;
      meta.prealloc = true;
      await performCow(writer, meta);
      await linkL2(writer, meta);
    }
    position += current;
  }
  if (hostOffset + current > writer.dataFile.size) {
    await writer.extendDataFile(hostOffset + current);
  }
}
