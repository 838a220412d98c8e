import type { Span } from '../create/ranges.js';
import { VdiBackupError } from '../errors.js';
import type { OpenedSources } from '../sources/opened-sources.js';
import { SheepClient } from './client.js';
import type { Inode } from './inode.js';
import { lookupVdi, parseSnapshotSelector, readInode } from './sheep-ops.js';
import { parseSheepdogUrl } from './url.js';
import { sheepdogVdiDevice } from './vdi-device.js';

/**
 * Two snapshots of a Sheepdog VDI, as dog's backup reads them: the object size is the
 * "from" inode's; objects both inodes point to (the same owner) are shared and never read.
 */
export async function openSheepdogSources(
  url: string,
  from: string,
  to: string | undefined,
): Promise<OpenedSources> {
  if (to === undefined) {
    throw new VdiBackupError(
      'INVALID_ARGUMENT',
      "a Sheepdog backup needs both snapshots, -F and -s (as dog's does)",
      { path: url },
    );
  }
  const address = parseSheepdogUrl(url);
  const client = await SheepClient.connect(address);
  try {
    const fromInode = await snapshotInode(client, address.vdi, from);
    const toInode = await snapshotInode(client, address.vdi, to);
    const label = (inode: Inode, text: string) =>
      `${url}@${text} (snapshot ${inode.snapId}, VDI ${inode.vdiId.toString(16)})`;
    return {
      kind: 'sheepdog',
      from: sheepdogVdiDevice(client, fromInode, label(fromInode, from)),
      to: sheepdogVdiDevice(client, toInode, label(toInode, to)),
      objectSize: fromInode.objectSize,
      sharedRanges: async (offset, length) => sharedObjects(fromInode, toInode, offset, length),
      close: () => client.close(),
    };
  } catch (error) {
    await client.close();
    throw error;
  }
}

async function snapshotInode(client: SheepClient, vdi: string, text: string): Promise<Inode> {
  const vid = await lookupVdi(client, vdi, parseSnapshotSelector(text));
  const inode = await readInode(client, vid);
  if (inode.storePolicy !== 0) {
    throw new VdiBackupError(
      'UNSUPPORTED',
      `VDI "${vdi}" is a hyper volume (store_policy ${inode.storePolicy}, a B-tree inode), which has no snapshots to back up`,
      { path: client.name, structure: `inode of VDI ${vid.toString(16)}` },
    );
  }
  return inode;
}

function sharedObjects(from: Inode, to: Inode, offset: number, length: number): Span[] {
  if (from.objectSize !== to.objectSize) return [];
  const size = from.objectSize;
  const out: Span[] = [];
  const end = offset + length;
  for (let idx = Math.floor(offset / size); idx * size < end; idx++) {
    const owner = from.dataVdiId[idx] ?? 0;
    if (owner === 0 || owner !== (to.dataVdiId[idx] ?? 0)) continue;
    const start = Math.max(offset, idx * size);
    const stop = Math.min(end, (idx + 1) * size, from.vdiSize, to.vdiSize);
    if (stop > start) out.push([start, stop]);
  }
  return out;
}
