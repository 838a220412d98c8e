import { defineStruct, u32le } from '@x/blockio';

/*
 * The `dog vdi backup` stream (formats/sheepdog.md §1). All integers unsigned 32-bit
 * little-endian (sheepdog runs on x86-64 only and writes its structs raw).
 */

/** VDI_BACKUP_FORMAT_VERSION (dog/vdi.c), the same in every release. */
export const VDI_BACKUP_FORMAT_VERSION = 1;
/** VDI_BACKUP_MAGIC. */
export const VDI_BACKUP_MAGIC = 0x11921192;
/** The idx of the end-marker record (§1.2), written since v0.5.0. */
export const BACKUP_END_IDX = 0xffffffff;
/** Offsets and lengths of records are in 512-byte sectors (§1.3, SECTOR_SIZE). */
export const SECTOR_SIZE = 512;

/** `struct backup_hdr` as shipped (v0.5.0 … v1.0.1): 8 bytes. */
export const backupHeader = defineStruct('backup stream header', 8, [
  { name: 'version', offset: 0, type: u32le, doc: 'VDI_BACKUP_FORMAT_VERSION (1)' },
  { name: 'magic', offset: 4, type: u32le, doc: 'VDI_BACKUP_MAGIC (0x11921192)' },
] as const);

/**
 * The seed layout of commit 62f5ace8 (2012-09-10, never released): 16 bytes with the
 * record count, no end marker (§1.1).
 */
export const seedBackupHeader = defineStruct('2012 backup stream header', 16, [
  { name: 'version', offset: 0, type: u32le, doc: 'VDI_BACKUP_FORMAT_VERSION (1)' },
  { name: 'magic', offset: 4, type: u32le, doc: 'VDI_BACKUP_MAGIC' },
  { name: 'nrObjBackups', offset: 8, type: u32le, doc: 'records that follow' },
  { name: 'reserved', offset: 12, type: u32le, doc: 'zero' },
] as const);

/** `struct obj_backup` header: 16 bytes, followed by `length` bytes of data. */
export const recordHeader = defineStruct('backup record header', 16, [
  { name: 'idx', offset: 0, type: u32le, doc: 'data-object index in the VDI' },
  { name: 'offset', offset: 4, type: u32le, doc: 'byte offset in the object' },
  { name: 'length', offset: 8, type: u32le, doc: 'data bytes that follow' },
  { name: 'reserved', offset: 12, type: u32le, doc: 'written as 0, ignored by dog' },
] as const);

export const HEADER_SIZE = backupHeader.size;
export const SEED_HEADER_SIZE = seedBackupHeader.size;
export const RECORD_HEADER_SIZE = recordHeader.size;

/** The two layouts a reader tells apart. */
export type BackupLayout = 'dog' | 'seed-2012';
