import { defineStruct, reserved, u32le, u64le } from '@x/blockio';
import { i64le } from './fields.js';

/** §8 pxar item header: full_size includes these 16 bytes. */
export const PxarHeader = defineStruct('pxar item header', 16, [
  { name: 'htype', offset: 0, type: u64le },
  { name: 'fullSize', offset: 8, type: u64le },
] as const);

/** §8 Stat (ENTRY payload). */
export const PxarStat = defineStruct('pxar stat', 40, [
  { name: 'mode', offset: 0, type: u64le },
  { name: 'flags', offset: 8, type: u64le },
  { name: 'uid', offset: 16, type: u32le },
  { name: 'gid', offset: 20, type: u32le },
  { name: 'mtimeSecs', offset: 24, type: i64le },
  { name: 'mtimeNanos', offset: 32, type: u32le },
  { name: 'padding', offset: 36, type: reserved(4) },
] as const);

/** §8 Old ENTRY_V1 stat (read only). */
export const PxarStatV1 = defineStruct('pxar stat v1', 32, [
  { name: 'mode', offset: 0, type: u64le },
  { name: 'flags', offset: 8, type: u64le },
  { name: 'uid', offset: 16, type: u32le },
  { name: 'gid', offset: 20, type: u32le },
  { name: 'mtimeNanos', offset: 24, type: u64le },
] as const);

/** §8 Goodbye table item. */
export const PxarGoodbyeItem = defineStruct('pxar goodbye item', 24, [
  { name: 'hash', offset: 0, type: u64le },
  { name: 'offset', offset: 8, type: u64le },
  { name: 'size', offset: 16, type: u64le },
] as const);

// §8 item types (SipHash-2-4 of the names in the spec)
export const PXAR_ENTRY = 0xd5956474e588acefn;
export const PXAR_ENTRY_V1 = 0x11da850a1c1cceffn;
export const PXAR_FILENAME = 0x16701121063917b3n;
export const PXAR_PAYLOAD = 0x28147a1b0b7c1a25n;
export const PXAR_GOODBYE = 0x2fec4fa642d5731dn;
export const PXAR_GOODBYE_TAIL_MARKER = 0xef5eed5b753e1555n;
export const PXAR_FORMAT_VERSION = 0x730f6c75df16a40dn;
export const PXAR_XATTR = 0x0dab0229b57dcd03n;
export const PXAR_FCAPS = 0x2da9dd9db5f7fb67n;
export const PXAR_QUOTA_PROJID = 0xe07540e82f7d1cbbn;
export const PXAR_SYMLINK = 0x27f971e7dbf5dc5fn;
export const PXAR_DEVICE = 0x9fc9e906586d5ce9n;
export const PXAR_HARDLINK = 0x51269c8422bd7275n;
export const PXAR_PAYLOAD_REF = 0x419d3d6bc4ba977en;
export const PXAR_PRELUDE = 0xe309d79d9f7b771bn;

// §8 SipHash-2-4 key of pxar's hashes
export const PXAR_HASH_KEY_0 = 0x83ac3f1cfbb450dbn;
export const PXAR_HASH_KEY_1 = 0xaa4f1b6879369fbdn;

export const PXAR_STAT_SIZE = 40;
export const PXAR_STAT_V1_SIZE = 32;
/** §8: filenames are at most 4096 bytes (plus the NUL). */
export const PXAR_MAX_FILENAME = 4096;

// §8 Stat mode bits
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
