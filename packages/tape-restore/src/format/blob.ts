import { bytes, defineStruct, u32le } from '@x/blockio';

/** §4 DataBlob header of plain and compressed blobs. */
export const DataBlobHeader = defineStruct('DataBlob header', 12, [
  { name: 'magic', offset: 0, type: bytes(8) },
  { name: 'crc', offset: 8, type: u32le, doc: 'CRC-32 (zlib) of everything after the header' },
] as const);

/** §4 DataBlob header of encrypted (and encrypted+compressed) blobs. */
export const EncryptedDataBlobHeader = defineStruct('encrypted DataBlob header', 44, [
  { name: 'magic', offset: 0, type: bytes(8) },
  { name: 'crc', offset: 8, type: u32le, doc: 'CRC-32 of the ciphertext only' },
  { name: 'iv', offset: 12, type: bytes(16) },
  { name: 'tag', offset: 28, type: bytes(16) },
] as const);

/** §4: the encoder refuses plaintext above 128 MiB. */
export const MAX_BLOB_PLAINTEXT = 128 * 1024 * 1024;
/** The largest blob a reader accepts: the plaintext limit plus the biggest header. */
export const MAX_BLOB_SIZE = MAX_BLOB_PLAINTEXT + EncryptedDataBlobHeader.size;
