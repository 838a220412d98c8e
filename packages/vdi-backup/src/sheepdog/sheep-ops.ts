import { VdiBackupError } from '../errors.js';
import type { SheepClient } from './client.js';
import { decodeInode, type Inode } from './inode.js';
import {
  SD_FLAG_CMD_COW,
  SD_FLAG_CMD_DIRECT,
  SD_FLAG_CMD_WRITE,
  SD_INODE_HEADER_SIZE,
  SD_OP_CREATE_AND_WRITE_OBJ,
  SD_OP_DEL_VDI,
  SD_OP_GET_VDI_INFO,
  SD_OP_NEW_VDI,
  SD_OP_READ_OBJ,
  SD_OP_WRITE_OBJ,
  SD_RES_NO_TAG,
  SD_RES_NO_VDI,
  vdiNamePayload,
  vidToVdiOid,
} from './protocol.js';

/** dog's rule for -s/-F: all digits is a snapshot id, anything else a tag. */
export function parseSnapshotSelector(text: string): { snapid: number; tag: string } {
  if (/^\d+$/.test(text)) {
    const snapid = Number(text);
    if (snapid === 0 || snapid > 0xffffffff) {
      throw new VdiBackupError('INVALID_ARGUMENT', `snapshot id ${text} is out of range`);
    }
    return { snapid, tag: '' };
  }
  return { snapid: 0, tag: text };
}

/**
 * GET_VDI_INFO: the id of VDI `name`'s snapshot (by id or tag), or of its working VDI
 * (no selector). NO_VDI and NO_TAG become NO_SUCH_VDI and NO_SUCH_SNAPSHOT.
 */
export async function lookupVdi(
  client: SheepClient,
  name: string,
  selector?: { snapid: number; tag: string },
): Promise<number> {
  const what = selector
    ? `snapshot ${selector.tag || selector.snapid} of VDI "${name}"`
    : `the working VDI "${name}"`;
  const reply = await client.request(
    {
      layout: 'vdi',
      opcode: SD_OP_GET_VDI_INFO,
      flags: SD_FLAG_CMD_WRITE,
      snapid: selector?.snapid ?? 0,
    },
    vdiNamePayload(name, selector?.tag ?? ''),
    what,
    { acceptResults: [SD_RES_NO_VDI, SD_RES_NO_TAG] },
  );
  if (reply.rsp.result === SD_RES_NO_VDI) {
    throw new VdiBackupError(
      'NO_SUCH_VDI',
      selector ? `no VDI named "${name}"` : `VDI "${name}" has no working VDI (only snapshots)`,
      { path: client.name, structure: what },
    );
  }
  if (reply.rsp.result === SD_RES_NO_TAG) {
    throw new VdiBackupError('NO_SUCH_SNAPSHOT', `VDI "${name}" has no ${what.split(' of ')[0]}`, {
      path: client.name,
      structure: what,
    });
  }
  return reply.rsp.vdiId;
}

/** Reads an inode's header and its data_vdi_id slots (only as many as the VDI has objects). */
export async function readInode(client: SheepClient, vid: number): Promise<Inode> {
  const what = `inode of VDI ${vid.toString(16)}`;
  const header = await readObjectBytes(client, vidToVdiOid(vid), 0, SD_INODE_HEADER_SIZE, what);
  const partial = decodeInode(header);
  if (partial.vdiId !== vid) {
    throw new VdiBackupError(
      'SHEEP_PROTOCOL',
      `the inode read for VDI ${vid.toString(16)} says it is VDI ${partial.vdiId.toString(16)}`,
      { path: client.name, structure: what },
    );
  }
  const slots = Buffer.alloc(4 * partial.objects);
  const chunk = 1 << 20;
  for (let at = 0; at < slots.byteLength; at += chunk) {
    const length = Math.min(chunk, slots.byteLength - at);
    const bytes = await readObjectBytes(
      client,
      vidToVdiOid(vid),
      SD_INODE_HEADER_SIZE + at,
      length,
      what,
    );
    bytes.copy(slots, at);
  }
  return decodeInode(Buffer.concat([header, slots]));
}

/**
 * READ_OBJ of [offset, offset + length): exactly that many bytes. A shorter reply (the
 * zero trimming of v0.5.2–v0.7) is placed at rsp.obj.offset in a zeroed buffer.
 */
export async function readObjectBytes(
  client: SheepClient,
  oid: bigint,
  offset: number,
  length: number,
  what: string,
  into?: Buffer,
): Promise<Buffer> {
  const reply = await client.request(
    { layout: 'obj', opcode: SD_OP_READ_OBJ, flags: SD_FLAG_CMD_DIRECT, oid, offset },
    undefined,
    what,
    { readLength: length },
  );
  const out = into ?? Buffer.alloc(length);
  if (reply.data.byteLength === length) {
    reply.data.copy(out);
    return out;
  }
  const start = Number(reply.rsp.objOffset) - offset;
  if (reply.data.byteLength > length || start < 0 || start + reply.data.byteLength > length) {
    throw new VdiBackupError(
      'SHEEP_PROTOCOL',
      `READ_OBJ of ${length} bytes at ${offset} returned ${reply.data.byteLength} bytes at ${reply.rsp.objOffset}`,
      { path: client.name, structure: what },
    );
  }
  out.fill(0);
  reply.data.copy(out, start);
  return out;
}

/** WRITE_OBJ, or CREATE_AND_WRITE_OBJ (copying the rest from `cowOid` when given). */
export async function writeObjectBytes(
  client: SheepClient,
  oid: bigint,
  offset: number,
  data: Uint8Array,
  options: { create?: boolean; cowOid?: bigint | undefined; copies: number; what: string },
): Promise<void> {
  const cow = options.create && options.cowOid !== undefined;
  await client.request(
    {
      layout: 'obj',
      opcode: options.create ? SD_OP_CREATE_AND_WRITE_OBJ : SD_OP_WRITE_OBJ,
      flags: SD_FLAG_CMD_WRITE | SD_FLAG_CMD_DIRECT | (cow ? SD_FLAG_CMD_COW : 0),
      oid,
      cowOid: cow ? options.cowOid : 0n,
      copies: options.copies,
      offset,
    },
    data,
    options.what,
  );
}

/** NEW_VDI: a new working VDI (a clone of `baseVid` when given), or with `snapshot` the rebase. */
export async function newVdi(
  client: SheepClient,
  name: string,
  options: {
    vdiSize: number;
    baseVid: number;
    copies: number;
    blockSizeShift: number;
    snapshot: boolean;
  },
): Promise<number> {
  const reply = await client.request(
    {
      layout: 'vdi',
      opcode: SD_OP_NEW_VDI,
      flags: SD_FLAG_CMD_WRITE,
      vdiSize: BigInt(options.vdiSize),
      baseVdiId: options.baseVid,
      copies: options.copies,
      blockSizeShift: options.blockSizeShift,
      snapid: options.snapshot ? 1 : 0,
    },
    vdiNamePayload(name),
    `${options.snapshot ? 'snapshot of' : 'new'} VDI "${name}"`,
  );
  return reply.rsp.vdiId;
}

/** DEL_VDI of the working VDI `name`. */
export async function deleteWorkingVdi(client: SheepClient, name: string): Promise<void> {
  await client.request(
    { layout: 'vdi', opcode: SD_OP_DEL_VDI, flags: SD_FLAG_CMD_WRITE, snapid: 0 },
    vdiNamePayload(name, ''),
    `the working VDI "${name}"`,
  );
}
