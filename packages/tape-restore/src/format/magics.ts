/**
 * Every 8-byte magic of the tape format: the first 8 bytes of SHA-256 of an ASCII
 * string (pbs-tape.md §1 "Magic derivation", §4, §5). Written out so the table reads
 * next to the spec; test/magics.test.ts re-derives each one.
 */
const magic = (hex: string): Uint8Array =>
  Uint8Array.from(Buffer.from(hex.replaceAll(' ', ''), 'hex'));

// §2 Blocks
export const PROXMOX_TAPE_BLOCK_HEADER_MAGIC_1_0 = magic('dc bd af ca eb a0 a5 28');
// §1 MediaContentHeader
export const PROXMOX_BACKUP_CONTENT_HEADER_MAGIC_1_0 = magic('63 ee 14 9f cd f2 9b 0c');
// §1 content magics
export const PROXMOX_BACKUP_MEDIA_LABEL_MAGIC_1_0 = magic('2a 05 bf 3c b0 30 aa 39');
export const PROXMOX_BACKUP_MEDIA_SET_LABEL_MAGIC_1_0 = magic('08 60 63 f9 2f 97 53 d8');
export const PROXMOX_BACKUP_CHUNK_ARCHIVE_MAGIC_1_0 = magic('3e ad a7 5f 31 4c 06 6e');
export const PROXMOX_BACKUP_CHUNK_ARCHIVE_MAGIC_1_1 = magic('6d 31 63 6d d7 02 83 bf');
export const PROXMOX_BACKUP_CHUNK_ARCHIVE_ENTRY_MAGIC_1_0 = magic('48 57 6d f2 de 42 8f dc');
export const PROXMOX_BACKUP_SNAPSHOT_ARCHIVE_MAGIC_1_0 = magic('09 b6 02 1f 7d e8 72 85');
export const PROXMOX_BACKUP_SNAPSHOT_ARCHIVE_MAGIC_1_1 = magic('da 16 15 d0 11 e2 9a 62');
export const PROXMOX_BACKUP_SNAPSHOT_ARCHIVE_MAGIC_1_2 = magic('62 10 36 9b ba 10 33 1d');
export const PROXMOX_BACKUP_CATALOG_ARCHIVE_MAGIC_1_0 = magic('b7 cf c7 25 9e 99 1e 73');
export const PROXMOX_BACKUP_CATALOG_ARCHIVE_MAGIC_1_1 = magic('b3 ec 71 f0 ad ec 02 60');
// §7 media catalog file
export const PROXMOX_BACKUP_MEDIA_CATALOG_MAGIC_1_0 = magic('dd 1d a4 01 3b 45 13 28');
export const PROXMOX_BACKUP_MEDIA_CATALOG_MAGIC_1_1 = magic('4c 8e e8 c1 20 a8 89 71');
// §4 DataBlob
export const UNCOMPRESSED_BLOB_MAGIC_1_0 = magic('42 ab 38 07 be 83 70 a1');
export const COMPRESSED_BLOB_MAGIC_1_0 = magic('31 b9 58 42 6f b6 a3 7f');
export const ENCRYPTED_BLOB_MAGIC_1_0 = magic('7b 67 85 be 22 2d 4c f0');
export const ENCR_COMPR_BLOB_MAGIC_1_0 = magic('e6 59 1b bf 0b bf d8 0b');
// §5 index files
export const FIXED_SIZED_CHUNK_INDEX_1_0 = magic('2f 7f 41 ed 91 fd 0f cd');
export const DYNAMIC_SIZED_CHUNK_INDEX_1_0 = magic('1c 91 4e a5 19 ba b3 cd');

/** The source string of each magic (§1, §4, §5), for the derivation test and messages. */
export const MAGIC_SOURCES: ReadonlyArray<readonly [Uint8Array, string]> = [
  [PROXMOX_TAPE_BLOCK_HEADER_MAGIC_1_0, 'Proxmox Tape Block Header v1.0'],
  [PROXMOX_BACKUP_CONTENT_HEADER_MAGIC_1_0, 'Proxmox Backup Content Header v1.0'],
  [PROXMOX_BACKUP_MEDIA_LABEL_MAGIC_1_0, 'Proxmox Backup Tape Label v1.0'],
  [PROXMOX_BACKUP_MEDIA_SET_LABEL_MAGIC_1_0, 'Proxmox Backup MediaSet Label v1.0'],
  [PROXMOX_BACKUP_CHUNK_ARCHIVE_MAGIC_1_0, 'Proxmox Backup Chunk Archive v1.0'],
  [PROXMOX_BACKUP_CHUNK_ARCHIVE_MAGIC_1_1, 'Proxmox Backup Chunk Archive v1.1'],
  [PROXMOX_BACKUP_CHUNK_ARCHIVE_ENTRY_MAGIC_1_0, 'Proxmox Backup Chunk Archive Entry v1.0'],
  [PROXMOX_BACKUP_SNAPSHOT_ARCHIVE_MAGIC_1_0, 'Proxmox Backup Snapshot Archive v1.0'],
  [PROXMOX_BACKUP_SNAPSHOT_ARCHIVE_MAGIC_1_1, 'Proxmox Backup Snapshot Archive v1.1'],
  [PROXMOX_BACKUP_SNAPSHOT_ARCHIVE_MAGIC_1_2, 'Proxmox Backup Snapshot Archive v1.2'],
  [PROXMOX_BACKUP_CATALOG_ARCHIVE_MAGIC_1_0, 'Proxmox Backup Catalog Archive v1.0'],
  [PROXMOX_BACKUP_CATALOG_ARCHIVE_MAGIC_1_1, 'Proxmox Backup Catalog Archive v1.1'],
  [PROXMOX_BACKUP_MEDIA_CATALOG_MAGIC_1_0, 'Proxmox Backup Media Catalog v1.0'],
  [PROXMOX_BACKUP_MEDIA_CATALOG_MAGIC_1_1, 'Proxmox Backup Media Catalog v1.1'],
  [UNCOMPRESSED_BLOB_MAGIC_1_0, 'Proxmox Backup uncompressed blob v1.0'],
  [COMPRESSED_BLOB_MAGIC_1_0, 'Proxmox Backup zstd compressed blob v1.0'],
  [ENCRYPTED_BLOB_MAGIC_1_0, 'Proxmox Backup encrypted blob v1.0'],
  [ENCR_COMPR_BLOB_MAGIC_1_0, 'Proxmox Backup zstd compressed encrypted blob v1.0'],
  [FIXED_SIZED_CHUNK_INDEX_1_0, 'Proxmox Backup fixed sized chunk index v1.0'],
  [DYNAMIC_SIZED_CHUNK_INDEX_1_0, 'Proxmox Backup dynamic sized chunk index v1.0'],
];

/** The kinds of tape file, by content magic (§1). */
export type ContentKind =
  | 'media-label'
  | 'media-set-label'
  | 'chunk-archive-v1.0'
  | 'chunk-archive'
  | 'snapshot-archive-v1.0'
  | 'snapshot-archive-v1.1'
  | 'snapshot-archive-v1.2'
  | 'catalog-archive-v1.0'
  | 'catalog-archive-v1.1';

export const CONTENT_MAGICS: ReadonlyArray<readonly [Uint8Array, ContentKind]> = [
  [PROXMOX_BACKUP_MEDIA_LABEL_MAGIC_1_0, 'media-label'],
  [PROXMOX_BACKUP_MEDIA_SET_LABEL_MAGIC_1_0, 'media-set-label'],
  [PROXMOX_BACKUP_CHUNK_ARCHIVE_MAGIC_1_0, 'chunk-archive-v1.0'],
  [PROXMOX_BACKUP_CHUNK_ARCHIVE_MAGIC_1_1, 'chunk-archive'],
  [PROXMOX_BACKUP_SNAPSHOT_ARCHIVE_MAGIC_1_0, 'snapshot-archive-v1.0'],
  [PROXMOX_BACKUP_SNAPSHOT_ARCHIVE_MAGIC_1_1, 'snapshot-archive-v1.1'],
  [PROXMOX_BACKUP_SNAPSHOT_ARCHIVE_MAGIC_1_2, 'snapshot-archive-v1.2'],
  [PROXMOX_BACKUP_CATALOG_ARCHIVE_MAGIC_1_0, 'catalog-archive-v1.0'],
  [PROXMOX_BACKUP_CATALOG_ARCHIVE_MAGIC_1_1, 'catalog-archive-v1.1'],
];

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function contentKindOf(contentMagic: Uint8Array): ContentKind | undefined {
  return CONTENT_MAGICS.find(([bytes]) => sameBytes(bytes, contentMagic))?.[1];
}
