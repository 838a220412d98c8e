import { defineStruct, fixedString, u8, u32le, u64le } from '@x/blockio';
import { SD_DEFAULT_BLOCK_SIZE_SHIFT, SD_INODE_HEADER_SIZE } from './protocol.js';

/** The inode header (§4.6), up to data_vdi_id[]. */
export const inodeHeader = defineStruct('sheepdog inode', SD_INODE_HEADER_SIZE, [
  { name: 'name', offset: 0, type: fixedString(256, 'utf8') },
  { name: 'tag', offset: 256, type: fixedString(256, 'utf8') },
  { name: 'createTime', offset: 512, type: u64le },
  { name: 'snapCtime', offset: 520, type: u64le, doc: '≠ 0: a snapshot' },
  { name: 'vmClockNsec', offset: 528, type: u64le },
  { name: 'vdiSize', offset: 536, type: u64le },
  { name: 'vmStateSize', offset: 544, type: u64le },
  { name: 'copyPolicy', offset: 552, type: u8 },
  { name: 'storePolicy', offset: 553, type: u8, doc: '1: B-tree hyper volume' },
  { name: 'nrCopies', offset: 554, type: u8 },
  { name: 'blockSizeShift', offset: 555, type: u8, doc: '0 means 22' },
  { name: 'snapId', offset: 556, type: u32le },
  { name: 'vdiId', offset: 560, type: u32le },
  { name: 'parentVdiId', offset: 564, type: u32le },
] as const);

/** Byte offset of data_vdi_id[idx] in the inode object. */
export function dataVdiIdOffset(idx: number): number {
  return SD_INODE_HEADER_SIZE + 4 * idx;
}

/** An inode as a client needs it: the header fields and the owners of its objects. */
export interface Inode {
  name: string;
  tag: string;
  createTime: bigint;
  snapCtime: bigint;
  vdiSize: number;
  copyPolicy: number;
  storePolicy: number;
  nrCopies: number;
  /** block_size_shift, 0 read as 22. */
  blockSizeShift: number;
  snapId: number;
  vdiId: number;
  parentVdiId: number;
  /** data_vdi_id[0 … objects − 1]: the VDI owning each object, 0 = unallocated. */
  dataVdiId: Uint32Array;
  objectSize: number;
  objects: number;
  isSnapshot: boolean;
}

/** Decodes a header and the slots that follow it (as many as `bytes` holds, up to `objects`). */
export function decodeInode(bytes: Buffer): Inode {
  const header = inodeHeader.decode(bytes);
  const blockSizeShift =
    header.blockSizeShift === 0 ? SD_DEFAULT_BLOCK_SIZE_SHIFT : header.blockSizeShift;
  const objectSize = 2 ** blockSizeShift;
  const vdiSize = Number(header.vdiSize);
  const objects = Math.ceil(vdiSize / objectSize);
  const slots = new Uint32Array(objects);
  for (let idx = 0; idx < objects; idx++) {
    const at = dataVdiIdOffset(idx);
    slots[idx] = at + 4 <= bytes.byteLength ? bytes.readUInt32LE(at) : 0;
  }
  return {
    name: header.name,
    tag: header.tag,
    createTime: header.createTime,
    snapCtime: header.snapCtime,
    vdiSize,
    copyPolicy: header.copyPolicy,
    storePolicy: header.storePolicy,
    nrCopies: header.nrCopies,
    blockSizeShift,
    snapId: header.snapId,
    vdiId: header.vdiId,
    parentVdiId: header.parentVdiId,
    dataVdiId: slots,
    objectSize,
    objects,
    isSnapshot: header.snapCtime !== 0n,
  };
}
