import { defineStruct, u8, u16le, u32le, u64le } from '@x/blockio';

/*
 * The sheep wire protocol (formats/sheepdog.md §4), little-endian. One 48-byte request
 * header, then `dataLength` bytes of payload only when the WRITE flag is set; one
 * 48-byte response header, then `dataLength` bytes. The union at 16..47 is read as the
 * object or the VDI layout depending on the opcode.
 */

/**
 * SD_PROTO_VER 0x01, as QEMU's driver sent: accepted by every release (v0.5.2+ take 0, 1
 * or 2), and it is never answered with zero-trimmed reads (§4.3).
 */
export const SD_PROTO_VER = 0x01;
export const SD_HEADER_SIZE = 48;
/** SD_INODE_HEADER_SIZE: the inode up to data_vdi_id[] (every release). */
export const SD_INODE_HEADER_SIZE = 4664;
/** SD_MAX_VDI_LEN / SD_MAX_VDI_TAG_LEN. */
export const SD_MAX_VDI_LEN = 256;
export const SD_MAX_VDI_TAG_LEN = 256;
/** READ_VDIS answers with this many bits (SD_NR_VDIS). */
export const SD_NR_VDIS = 1 << 24;
/** block_size_shift 0 in an inode written before v1.0 means 22 (4 MiB objects). */
export const SD_DEFAULT_BLOCK_SIZE_SHIFT = 22;

/** Opcodes (§4.4). */
export const SD_OP_CREATE_AND_WRITE_OBJ = 0x01;
export const SD_OP_READ_OBJ = 0x02;
export const SD_OP_WRITE_OBJ = 0x03;
export const SD_OP_NEW_VDI = 0x11;
export const SD_OP_LOCK_VDI = 0x12;
export const SD_OP_RELEASE_VDI = 0x13;
export const SD_OP_GET_VDI_INFO = 0x14;
export const SD_OP_READ_VDIS = 0x15;
export const SD_OP_DEL_VDI = 0x17;

export const OPCODE_NAMES: Record<number, string> = {
  [SD_OP_CREATE_AND_WRITE_OBJ]: 'CREATE_AND_WRITE_OBJ',
  [SD_OP_READ_OBJ]: 'READ_OBJ',
  [SD_OP_WRITE_OBJ]: 'WRITE_OBJ',
  [SD_OP_NEW_VDI]: 'NEW_VDI',
  [SD_OP_LOCK_VDI]: 'LOCK_VDI',
  [SD_OP_RELEASE_VDI]: 'RELEASE_VDI',
  [SD_OP_GET_VDI_INFO]: 'GET_VDI_INFO',
  [SD_OP_READ_VDIS]: 'READ_VDIS',
  [SD_OP_DEL_VDI]: 'DEL_VDI',
};

/** Request flags (§4.4). */
export const SD_FLAG_CMD_WRITE = 0x01;
export const SD_FLAG_CMD_COW = 0x02;
export const SD_FLAG_CMD_CACHE = 0x04;
export const SD_FLAG_CMD_DIRECT = 0x08;

/** Results (§4.4, v1.0 numbering for the public ones). */
export const SD_RES_SUCCESS = 0x00;
export const SD_RES_NO_OBJ = 0x02;
export const SD_RES_VDI_EXIST = 0x04;
export const SD_RES_INVALID_PARMS = 0x05;
export const SD_RES_NO_VDI = 0x08;
export const SD_RES_NO_TAG = 0x0e;
export const SD_RES_VER_MISMATCH = 0x14;

export const RESULT_NAMES: Record<number, string> = {
  0: 'SUCCESS',
  1: 'UNKNOWN',
  2: 'NO_OBJ',
  3: 'EIO',
  4: 'VDI_EXIST',
  5: 'INVALID_PARMS',
  6: 'SYSTEM_ERROR',
  7: 'VDI_LOCKED',
  8: 'NO_VDI',
  9: 'NO_BASE_VDI',
  10: 'VDI_READ',
  11: 'VDI_WRITE',
  12: 'BASE_VDI_READ',
  13: 'BASE_VDI_WRITE',
  14: 'NO_TAG',
  15: 'STARTUP',
  16: 'VDI_NOT_LOCKED',
  17: 'SHUTDOWN',
  18: 'NO_MEM',
  19: 'FULL_VDI',
  20: 'VER_MISMATCH',
  21: 'NO_SPACE',
  22: 'WAIT_FOR_FORMAT',
  23: 'WAIT_FOR_JOIN',
  24: 'JOIN_FAILED',
  25: 'HALT',
  26: 'READONLY',
  29: 'INODE_INVALIDATED',
};

export function resultName(result: number): string {
  return RESULT_NAMES[result] ?? `0x${result.toString(16)}`;
}

/** `struct sd_req` with the object-op union (§4.2). */
export const objectRequest = defineStruct('sd_req (object)', SD_HEADER_SIZE, [
  { name: 'protoVer', offset: 0, type: u8 },
  { name: 'opcode', offset: 1, type: u8 },
  { name: 'flags', offset: 2, type: u16le },
  { name: 'epoch', offset: 4, type: u32le },
  { name: 'id', offset: 8, type: u32le },
  { name: 'dataLength', offset: 12, type: u32le },
  { name: 'oid', offset: 16, type: u64le },
  { name: 'cowOid', offset: 24, type: u64le },
  { name: 'copies', offset: 32, type: u8 },
  { name: 'copyPolicy', offset: 33, type: u8 },
  { name: 'ecIndex', offset: 34, type: u8 },
  { name: 'tgtEpoch', offset: 36, type: u32le },
  { name: 'offset', offset: 40, type: u32le },
] as const);

/** `struct sd_req` with the VDI-op union (§4.2). */
export const vdiRequest = defineStruct('sd_req (vdi)', SD_HEADER_SIZE, [
  { name: 'protoVer', offset: 0, type: u8 },
  { name: 'opcode', offset: 1, type: u8 },
  { name: 'flags', offset: 2, type: u16le },
  { name: 'epoch', offset: 4, type: u32le },
  { name: 'id', offset: 8, type: u32le },
  { name: 'dataLength', offset: 12, type: u32le },
  { name: 'vdiSize', offset: 16, type: u64le },
  { name: 'baseVdiId', offset: 24, type: u32le },
  { name: 'copies', offset: 28, type: u8 },
  { name: 'copyPolicy', offset: 29, type: u8 },
  { name: 'storePolicy', offset: 30, type: u8 },
  { name: 'blockSizeShift', offset: 31, type: u8 },
  { name: 'snapid', offset: 32, type: u32le },
  { name: 'type', offset: 36, type: u32le },
] as const);

/** `struct sd_rsp`: the common part, and both unions' fields (§4.2). */
export const response = defineStruct('sd_rsp', SD_HEADER_SIZE, [
  { name: 'protoVer', offset: 0, type: u8 },
  { name: 'opcode', offset: 1, type: u8 },
  { name: 'flags', offset: 2, type: u16le },
  { name: 'epoch', offset: 4, type: u32le },
  { name: 'id', offset: 8, type: u32le },
  { name: 'dataLength', offset: 12, type: u32le },
  { name: 'result', offset: 16, type: u32le },
  { name: 'objCopies', offset: 20, type: u8, doc: 'obj: copies' },
  { name: 'objOffset', offset: 24, type: u64le, doc: 'obj: where returned data starts' },
  { name: 'vdiId', offset: 24, type: u32le, doc: 'vdi: vdi_id (overlaps objOffset)' },
  { name: 'attrId', offset: 28, type: u32le, doc: 'vdi: attr_id' },
  { name: 'vdiCopies', offset: 32, type: u8, doc: 'vdi: copies' },
  { name: 'blockSizeShift', offset: 33, type: u8, doc: 'vdi: block_size_shift' },
] as const);

export type ObjectRequest = ReturnType<typeof objectRequest.decode>;
export type VdiRequest = ReturnType<typeof vdiRequest.decode>;
export type Response = ReturnType<typeof response.decode>;

/** Object ids (§4.5). */
export const VDI_BIT = 1n << 63n;
export const VDI_SPACE_SHIFT = 32n;

export function vidToVdiOid(vid: number): bigint {
  return VDI_BIT | (BigInt(vid) << VDI_SPACE_SHIFT);
}

export function vidToDataOid(vid: number, idx: number): bigint {
  return (BigInt(vid) << VDI_SPACE_SHIFT) | BigInt(idx);
}

export function oidToVid(oid: bigint): number {
  return Number((oid >> VDI_SPACE_SHIFT) & 0xffffffn);
}

export function isVdiOid(oid: bigint): boolean {
  return (oid & VDI_BIT) !== 0n;
}

/** A 256-byte NUL-padded name (and optionally a tag): the payload of VDI ops. */
export function vdiNamePayload(name: string, tag?: string): Buffer {
  const payload = Buffer.alloc(
    tag === undefined ? SD_MAX_VDI_LEN : SD_MAX_VDI_LEN + SD_MAX_VDI_TAG_LEN,
  );
  payload.write(name, 0, SD_MAX_VDI_LEN - 1, 'utf8');
  if (tag !== undefined) payload.write(tag, SD_MAX_VDI_LEN, SD_MAX_VDI_TAG_LEN - 1, 'utf8');
  return payload;
}
