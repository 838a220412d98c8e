import { createCipheriv, createHash, pbkdf2Sync, randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { DataBlobHeader, EncryptedDataBlobHeader } from '../format/blob.js';
import {
  COMPRESSED_BLOB_MAGIC_1_0,
  ENCR_COMPR_BLOB_MAGIC_1_0,
  ENCRYPTED_BLOB_MAGIC_1_0,
  UNCOMPRESSED_BLOB_MAGIC_1_0,
} from '../format/magics.js';
import { encodeZstdFrame } from './zstd-frame.js';

/** A datastore encryption key (fixtures only): AES-256 key and the digest id key (§4). */
export interface FixtureKey {
  readonly key: Buffer;
  readonly idKey: Buffer;
}

export function fixtureKey(seed: string): FixtureKey {
  const key = createHash('sha256').update(seed).digest();
  return { key, idKey: pbkdf2Sync(key, '_id_key', 10, 32, 'sha256') };
}

/** §4 chunk digest: SHA-256 of the plaintext (|| id_key when encrypted). */
export function chunkDigest(plaintext: Uint8Array, key?: FixtureKey): Buffer {
  const hash = createHash('sha256').update(plaintext);
  if (key) hash.update(key.idKey);
  return hash.digest();
}

export interface EncodeBlobOptions {
  /** Try zstd; kept only when strictly smaller (§4). Default true. */
  compress?: boolean;
  /** Encrypt with this key (AES-256-GCM, random IV, empty AAD). */
  key?: FixtureKey | undefined;
  /** Write the frame's content size (PBS does for encrypted+compressed, §11.6). */
  contentSize?: boolean;
  /** Keep the zstd form even when it is not smaller (to test readers on such blobs). */
  forceCompressed?: boolean;
  /** Makes the zstd frame instead of the built-in raw/RLE encoder (e.g. the zstd program). */
  compressor?: ((plaintext: Uint8Array) => Uint8Array) | undefined;
}

/** Encodes a DataBlob the way PBS's DataBlob::encode does (§4). */
export function encodeDataBlob(plaintext: Uint8Array, options: EncodeBlobOptions = {}): Buffer {
  const compress = options.compress ?? true;
  let payload: Uint8Array = plaintext;
  let compressed = false;
  if (compress) {
    const frame = options.compressor
      ? options.compressor(plaintext)
      : encodeZstdFrame(plaintext, options.contentSize ?? options.key !== undefined);
    if (frame.byteLength < plaintext.byteLength || options.forceCompressed) {
      payload = frame;
      compressed = true;
    }
  }
  if (!options.key) {
    const out = Buffer.alloc(DataBlobHeader.size + payload.byteLength);
    DataBlobHeader.encode(
      {
        magic: compressed ? COMPRESSED_BLOB_MAGIC_1_0 : UNCOMPRESSED_BLOB_MAGIC_1_0,
        crc: zlib.crc32(payload),
      },
      out,
    );
    out.set(payload, DataBlobHeader.size);
    return out;
  }
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-gcm', options.key.key, iv);
  const ciphertext = Buffer.concat([cipher.update(payload), cipher.final()]);
  const tag = cipher.getAuthTag();
  const out = Buffer.alloc(EncryptedDataBlobHeader.size + ciphertext.byteLength);
  EncryptedDataBlobHeader.encode(
    {
      magic: compressed ? ENCR_COMPR_BLOB_MAGIC_1_0 : ENCRYPTED_BLOB_MAGIC_1_0,
      crc: zlib.crc32(ciphertext),
      iv,
      tag,
    },
    out,
  );
  out.set(ciphertext, EncryptedDataBlobHeader.size);
  return out;
}
