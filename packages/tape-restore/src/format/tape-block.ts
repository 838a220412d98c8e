import { bytes, defineStruct, u8, u32le } from '@x/blockio';
import { u24le } from './fields.js';

/** §2: every tape file is written in blocks of this size (PROXMOX_TAPE_BLOCK_SIZE). */
export const PROXMOX_TAPE_BLOCK_SIZE = 262144;
export const BLOCK_HEADER_SIZE = 16;
/** §2: payload bytes per block (not 262144). */
export const BLOCK_PAYLOAD_SIZE = PROXMOX_TAPE_BLOCK_SIZE - BLOCK_HEADER_SIZE;

// §2 block header flags
export const END_OF_STREAM = 0x01;
export const INCOMPLETE = 0x02;

/** §2 Blocks: the 16-byte header of every tape block. */
export const BlockHeader = defineStruct('tape block header', BLOCK_HEADER_SIZE, [
  { name: 'magic', offset: 0, type: bytes(8), doc: 'PROXMOX_TAPE_BLOCK_HEADER_MAGIC_1_0' },
  { name: 'flags', offset: 8, type: u8, doc: 'bit0 END_OF_STREAM, bit1 INCOMPLETE' },
  { name: 'size', offset: 9, type: u24le, doc: 'valid payload bytes' },
  { name: 'seqNr', offset: 12, type: u32le, doc: '0 for the first block of each file' },
] as const);
