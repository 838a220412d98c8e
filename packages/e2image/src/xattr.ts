import { verifyXattrBlockChecksum } from './checksum.js';
import { readFile } from './file-read.js';
import type { Filesystem } from './filesystem.js';
import { EXT2_EXT_ATTR_MAGIC, EXT2_EXT_ATTR_MAGIC_v1 } from './format/constants.js';
import { XATTR_HEADER_SIZE, XATTR_PREFIXES } from './format/xattr.js';
import { Inode } from './inode.js';
import { inInodeEntries, parseEntries, type RawEntry, xattrError } from './xattr-entries.js';

export interface ExtendedAttribute {
  /** Full name with its namespace prefix, e.g. "user.comment". */
  readonly name: string;
  readonly nameIndex: number;
  readonly value: Buffer;
  /** Where it is stored. */
  readonly location: 'inode' | 'block' | 'ea-inode';
}

/** Values larger than this (EA inodes can be up to 64 KiB) are refused as corrupt. */
const MAX_VALUE = 1 << 16;

/** All extended attributes of an inode: the in-inode area first, then the xattr block. */
export async function readXattrs(
  fs: Filesystem,
  inodeOrNumber: Inode | number,
): Promise<ExtendedAttribute[]> {
  const inode = inodeOrNumber instanceof Inode ? inodeOrNumber : await fs.readInode(inodeOrNumber);
  const result: ExtendedAttribute[] = [];
  for (const entry of inInodeEntries(fs, inode))
    result.push(await resolve(fs, inode, entry, 'inode'));
  const block = inode.fileAcl;
  if (block !== 0) {
    fs.checkBlockRange(block, 1, 'BAD_XATTR', `xattr block ${block}`, { inode: inode.ino });
    const bytes = await fs.readBlocks(block, 1, `xattr block ${block} of inode ${inode.ino}`);
    const magic = bytes.readUInt32LE(0);
    if (magic !== EXT2_EXT_ATTR_MAGIC && magic !== EXT2_EXT_ATTR_MAGIC_v1) {
      throw xattrError(fs, inode, `xattr block ${block} has magic 0x${magic.toString(16)}`, block);
    }
    if (fs.metadataChecksums) {
      const check = verifyXattrBlockChecksum(fs.checksumSeed, block, bytes);
      fs.checksums.record('xattr block', check.ok, {
        inode: inode.ino,
        block,
        stored: check.stored,
        computed: check.computed,
      });
    }
    for (const entry of parseEntries(fs, inode, bytes, XATTR_HEADER_SIZE, 0, block)) {
      result.push(await resolve(fs, inode, entry, 'block'));
    }
  }
  return result;
}

async function resolve(
  fs: Filesystem,
  inode: Inode,
  entry: RawEntry,
  location: 'inode' | 'block',
): Promise<ExtendedAttribute> {
  const prefix = XATTR_PREFIXES[entry.nameIndex] ?? '';
  const name = prefix.endsWith('.') || prefix === '' ? `${prefix}${entry.suffix}` : prefix;
  if (entry.valueInode === 0)
    return { name, nameIndex: entry.nameIndex, value: entry.value, location };
  if (entry.valueSize > MAX_VALUE) {
    throw xattrError(fs, inode, `value of "${name}" claims ${entry.valueSize} bytes`, undefined);
  }
  const value = await readFile(fs, entry.valueInode, { length: entry.valueSize });
  return { name, nameIndex: entry.nameIndex, value, location: 'ea-inode' };
}
