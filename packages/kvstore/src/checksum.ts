import { crc32c, unmaskCrc32c } from '@x/blockio';
import { kCRC32c, kNoChecksum, kXXH3, kxxHash, kxxHash64 } from './format/constants.js';
import { xxh3 } from './xxh3.js';
import { xxHash32, xxHash64 } from './xxhash.js';

/** Names for messages. */
export const CHECKSUM_NAMES: Record<number, string> = {
  [kNoChecksum]: 'none',
  [kCRC32c]: 'CRC-32C',
  [kxxHash]: 'xxHash32',
  [kxxHash64]: 'xxHash64',
  [kXXH3]: 'XXH3',
};

/**
 * The checksum of a block as RocksDB's ComputeBuiltinChecksum stores it in the block
 * trailer: over the block contents and the compression type byte that follows them
 * (`withType` = contents + type). CRC-32C is stored masked; xxHash32 as is; xxHash64
 * as its low 32 bits; XXH3 over the contents alone, its low 32 bits then mixed with
 * the type byte (ModifyChecksumForLastByte). Returns undefined for an unknown type.
 */
export function blockChecksum(type: number, withType: Uint8Array): number | undefined {
  switch (type) {
    case kCRC32c:
      return crc32c(withType);
    case kxxHash:
      return xxHash32(withType);
    case kxxHash64:
      return Number(xxHash64(withType) & 0xffffffffn);
    case kXXH3: {
      const last = withType[withType.length - 1] as number;
      const low = Number(xxh3(withType.subarray(0, withType.length - 1)) & 0xffffffffn);
      return (low ^ Math.imul(last, XXH3_LAST_BYTE_PRIME)) >>> 0;
    }
    default:
      return undefined;
  }
}

/** RocksDB's kRandomPrime for ModifyChecksumForLastByte. */
const XXH3_LAST_BYTE_PRIME = 0x6b9083d9;

/** The stored trailer value in the form blockChecksum returns (CRC-32C is unmasked). */
export function storedChecksum(type: number, stored: number): number {
  return type === kCRC32c ? unmaskCrc32c(stored) : stored;
}
