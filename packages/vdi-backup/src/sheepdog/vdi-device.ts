import { type BlockDevice, readOnlyDevice } from '@x/blockio';
import type { SheepClient } from './client.js';
import type { Inode } from './inode.js';
import { vidToDataOid } from './protocol.js';
import { readObjectBytes } from './sheep-ops.js';

/**
 * A VDI snapshot as a read-only BlockDevice: byte X is in object X / objectSize, read
 * from the VDI that owns it (data_vdi_id, often an older snapshot's); unallocated objects
 * read as zeros and are reported `unallocated` by extents(), so they are never fetched.
 */
export function sheepdogVdiDevice(client: SheepClient, inode: Inode, label: string): BlockDevice {
  const { objectSize } = inode;
  return readOnlyDevice({
    name: label,
    size: inode.vdiSize,
    queueDepth: 4,
    alignment: { optimal: objectSize },
    async read(offset, into) {
      const idx = Math.floor(offset / objectSize);
      const inObject = offset - idx * objectSize;
      const length = Math.min(into.byteLength, objectSize - inObject);
      const owner = inode.dataVdiId[idx] ?? 0;
      const target = Buffer.from(into.buffer, into.byteOffset, length);
      if (owner === 0) {
        target.fill(0);
        return length;
      }
      await readObjectBytes(
        client,
        vidToDataOid(owner, idx),
        inObject,
        length,
        `object ${idx} (owned by VDI ${owner.toString(16)}) of ${label}`,
        target,
      );
      return length;
    },
    async *extents(range) {
      const end = range.offset + range.length;
      let position = range.offset;
      while (position < end) {
        const idx = Math.floor(position / objectSize);
        const objectEnd = Math.min(end, (idx + 1) * objectSize);
        const kind = (inode.dataVdiId[idx] ?? 0) === 0 ? 'unallocated' : 'data';
        yield { offset: position, length: objectEnd - position, kind };
        position = objectEnd;
      }
    },
  });
}
