import { checkedAdd, type LongRunningOptions, ProgressTracker, throwIfAborted } from '@x/blockio';
import { VdiBackupError } from '../errors.js';
import type { PreparedTarget, TargetResult } from '../restore/prepared-target.js';
import type { SheepdogRestoreTarget } from '../restore/sheepdog-target-types.js';
import type { BackupReader } from '../stream/backup-reader.js';
import { type SheepAddress, SheepClient } from './client.js';
import { dataVdiIdOffset, type Inode } from './inode.js';
import { vidToDataOid, vidToVdiOid } from './protocol.js';
import {
  deleteWorkingVdi,
  lookupVdi,
  newVdi,
  parseSnapshotSelector,
  readInode,
  writeObjectBytes,
} from './sheep-ops.js';
import { parseSheepdogUrl } from './url.js';

/**
 * `dog vdi restore -s SNAP VDI`, made safe: everything is looked up and read first (the
 * base snapshot, the working VDI and its parent), the stream is validated whole by the
 * caller, and only then is the working VDI deleted and the restored snapshot built: a new
 * VDI cloned from the base, the records written copy-on-write over the base's objects,
 * frozen by the rebase that also makes a fresh working VDI on the old one's parent. If
 * the restore fails after the delete, the partial VDI is removed and a working VDI on the
 * old parent is put back (reconnecting if the connection dropped).
 */
export async function prepareSheepdogTarget(
  target: SheepdogRestoreTarget,
): Promise<PreparedTarget> {
  const address = parseSheepdogUrl(target.url);
  const client = await SheepClient.connect(address, { name: target.url });
  try {
    const name = address.vdi;
    const baseVid = await lookupVdi(client, name, parseSnapshotSelector(target.snapshot));
    const base = await readInode(client, baseVid);
    if (base.storePolicy !== 0) {
      throw new VdiBackupError('UNSUPPORTED', `VDI "${name}" is a hyper volume (B-tree inode)`, {
        path: target.url,
      });
    }
    const workingVid = await lookupVdi(client, name);
    const working = await readInode(client, workingVid);
    const ownWrites = working.dataVdiId.filter((owner) => owner === workingVid).length;
    if (ownWrites > 0 && !target.discardWorkingChanges) {
      throw new VdiBackupError(
        'WORKING_VDI_CHANGED',
        `the working VDI ${workingVid.toString(16)} holds ${ownWrites} objects written since its last snapshot; a restore replaces it and they would be lost (pass discardWorkingChanges: true)`,
        { path: target.url, structure: `inode of VDI ${workingVid.toString(16)}` },
      );
    }
    return {
      imageSize: base.vdiSize,
      objectSize: base.objectSize,
      files: [],
      apply: (reader, options) =>
        restoreInto(client, address, { name, base, working, url: target.url }, reader, options),
      close: () => client.close(),
    };
  } catch (error) {
    await client.close();
    throw error;
  }
}

interface Plan {
  name: string;
  url: string;
  base: Inode;
  working: Inode;
}

async function restoreInto(
  client: SheepClient,
  address: SheepAddress,
  plan: Plan,
  reader: BackupReader,
  options: LongRunningOptions,
): Promise<TargetResult> {
  const { name, base, working } = plan;
  throwIfAborted(options.signal, plan.url);
  await deleteWorking(client, name, working);
  let restoredVid = 0;
  let result: { records: number; bytesWritten: number };
  try {
    restoredVid = await newVdi(client, name, {
      vdiSize: base.vdiSize,
      baseVid: base.vdiId,
      copies: base.nrCopies,
      blockSizeShift: base.blockSizeShift,
      snapshot: false,
    });
    result = await writeRecords(client, reader, base, restoredVid, options);
  } catch (error) {
    await putBackWorkingVdi(client, address, plan, restoredVid).catch((recovery: unknown) => {
      throw new VdiBackupError(
        'SHEEP_PROTOCOL',
        `the restore failed (${(error as Error).message}) and putting the working VDI back failed too (${(recovery as Error).message}); VDI "${name}" may have no working VDI: recreate it with \`dog vdi clone -s <id> …\` or run the restore again`,
        { path: plan.url, cause: error },
      );
    });
    throw error;
  }
  // As dog: freeze the restored VDI and start a fresh working VDI on the old one's parent.
  const newWorkingVid = await newVdi(client, name, {
    vdiSize: working.vdiSize,
    baseVid: working.parentVdiId,
    copies: working.nrCopies,
    blockSizeShift: working.blockSizeShift,
    snapshot: true,
  });
  return {
    ...result,
    describe: {
      vdi: name,
      base: `${base.snapId} (${base.vdiId.toString(16)})`,
      'restored-vdi-id': restoredVid.toString(16),
      'working-vdi-id': newWorkingVid.toString(16),
    },
  };
}

/** As dog's delete: zero the slots (so the objects are released), then DEL_VDI. */
async function deleteWorking(client: SheepClient, name: string, inode: Inode): Promise<void> {
  if (inode.dataVdiId.some((owner) => owner !== 0)) {
    const batch = 1 << 18;
    for (let idx = 0; idx < inode.objects; idx += batch) {
      const count = Math.min(batch, inode.objects - idx);
      await writeObjectBytes(
        client,
        vidToVdiOid(inode.vdiId),
        dataVdiIdOffset(idx),
        Buffer.alloc(4 * count),
        {
          copies: inode.nrCopies,
          what: `inode of the working VDI ${inode.vdiId.toString(16)}`,
        },
      );
    }
  }
  await deleteWorkingVdi(client, name);
}

async function writeRecords(
  client: SheepClient,
  reader: BackupReader,
  base: Inode,
  vid: number,
  options: LongRunningOptions,
): Promise<{ records: number; bytesWritten: number }> {
  const progress = new ProgressTracker('restore', reader.summary.dataBytes, options.onProgress);
  const created = new Set<number>();
  let records = 0;
  let bytesWritten = 0;
  let buffer = Buffer.alloc(0);
  for await (const record of reader.records()) {
    throwIfAborted(options.signal);
    if (buffer.byteLength < record.length) buffer = Buffer.allocUnsafe(record.length);
    const data = await reader.readData(record, buffer);
    const owner = base.dataVdiId[record.idx] ?? 0;
    const what = `object ${record.idx} of the restored VDI ${vid.toString(16)}`;
    const create = !created.has(record.idx);
    await writeObjectBytes(client, vidToDataOid(vid, record.idx), record.offset, data, {
      create,
      cowOid: owner === 0 ? undefined : vidToDataOid(owner, record.idx),
      copies: base.nrCopies,
      what,
    });
    if (create) {
      created.add(record.idx);
      const slot = Buffer.alloc(4);
      slot.writeUInt32LE(vid);
      await writeObjectBytes(client, vidToVdiOid(vid), dataVdiIdOffset(record.idx), slot, {
        copies: base.nrCopies,
        what: `inode of the restored VDI ${vid.toString(16)}`,
      });
    }
    records++;
    bytesWritten = checkedAdd(bytesWritten, record.length);
    progress.advance(record.length);
  }
  progress.finish();
  return { records, bytesWritten };
}

/**
 * After a failure past the delete: remove the partial VDI and make a working VDI on the
 * old parent again — what the working VDI held minus its unsnapshotted writes (which a
 * restore discards anyway, and which were checked to be none unless discarding was asked).
 */
async function putBackWorkingVdi(
  failed: SheepClient,
  address: SheepAddress,
  plan: Plan,
  restoredVid: number,
): Promise<void> {
  await failed.close().catch(() => {});
  const client = await SheepClient.connect(address, { name: plan.url });
  try {
    if (restoredVid !== 0) {
      const partial = await readInode(client, restoredVid);
      await deleteWorking(client, plan.name, partial);
    }
    await newVdi(client, plan.name, {
      vdiSize: plan.working.vdiSize,
      baseVid: plan.working.parentVdiId,
      copies: plan.working.nrCopies,
      blockSizeShift: plan.working.blockSizeShift,
      snapshot: false,
    });
  } finally {
    await client.close();
  }
}
