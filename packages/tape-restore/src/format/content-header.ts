import { bytes, defineStruct, reserved, u8, u32le } from '@x/blockio';
import { i64le } from './fields.js';

/** §1 MediaContentHeader: starts the payload of every tape file. */
export const MediaContentHeader = defineStruct('MediaContentHeader', 48, [
  { name: 'magic', offset: 0, type: bytes(8), doc: 'PROXMOX_BACKUP_CONTENT_HEADER_MAGIC_1_0' },
  { name: 'contentMagic', offset: 8, type: bytes(8), doc: 'which content follows' },
  { name: 'uuid', offset: 16, type: bytes(16), doc: 'content uuid, random per tape file' },
  { name: 'ctime', offset: 32, type: i64le, doc: 'unix seconds' },
  { name: 'size', offset: 40, type: u32le, doc: 'length of the JSON header data that follows' },
  { name: 'partNumber', offset: 44, type: u8, doc: '0' },
  { name: 'reserved', offset: 45, type: reserved(3) },
] as const);

/** §1: labels are validated with 1 <= size <= 65536. */
export const MAX_LABEL_JSON_SIZE = 65536;
