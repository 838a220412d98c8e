import { verifyXattrBlockChecksum } from './checksum.js';
import { E2imageError } from './errors.js';
import type { Filesystem } from './filesystem.js';
import { EXT2_EXT_ATTR_MAGIC, EXT2_EXT_ATTR_MAGIC_v1 } from './format/constants.js';
import {
  EXT2_EXT_ATTR_MAGIC_IN_INODE,
  XATTR_ENTRY_SIZE,
  XATTR_HEADER_SIZE,
  XATTR_PREFIXES,
  xattrEntryStruct,
} from './format/xattr.js';
import { Inode } from './inode.js';

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

/** The value of one in-inode attribute (used for inline data's "system.data"). */
export function inInodeXattr(
  fs: Filesystem,
  inode: Inode,
  nameIndex: number,
  name: string,
): Buffer | undefined {
  for (const entry of inInodeEntries(fs, inode)) {
    if (entry.nameIndex === nameIndex && entry.suffix === name && entry.valueInode === 0)
      return entry.value;
  }
  return undefined;
}

interface RawEntry {
  nameIndex: number;
  suffix: string;
  valueInode: number;
  valueSize: number;
  value: Buffer;
}

function inInodeEntries(fs: Filesystem, inode: Inode): RawEntry[] {
  const extra = inode.extraIsize;
  if (fs.inodeSize <= 128 || extra === 0) return [];
  const start = 128 + extra;
  if (start + 4 > inode.bytes.length) return [];
  if (inode.bytes.readUInt32LE(start) !== EXT2_EXT_ATTR_MAGIC_IN_INODE) return [];
  const area = inode.bytes.subarray(start + 4);
  return parseEntries(fs, inode, area, 0, 0, undefined);
}

function parseEntries(
  fs: Filesystem,
  inode: Inode,
  area: Buffer,
  first: number,
  valueBase: number,
  block: number | undefined,
): RawEntry[] {
  const entries: RawEntry[] = [];
  let at = first;
  while (at + 4 <= area.length && area.readUInt32LE(at) !== 0) {
    if (at + XATTR_ENTRY_SIZE > area.length)
      throw xattrError(fs, inode, `entry at ${at} runs past the end`, block);
    const entry = xattrEntryStruct.decode(area, at);
    const nameEnd = at + XATTR_ENTRY_SIZE + entry.e_name_len;
    if (nameEnd > area.length)
      throw xattrError(fs, inode, `name at ${at} runs past the end`, block);
    const suffix = area.toString('latin1', at + XATTR_ENTRY_SIZE, nameEnd);
    let value = Buffer.alloc(0);
    if (entry.e_value_inum === 0 && entry.e_value_size > 0) {
      const valueStart = valueBase + entry.e_value_offs;
      const valueEnd = valueStart + entry.e_value_size;
      if (valueEnd > area.length) {
        throw xattrError(
          fs,
          inode,
          `value of "${suffix}" (${entry.e_value_size} bytes at ${entry.e_value_offs}) runs past the end`,
          block,
        );
      }
      value = Buffer.from(area.subarray(valueStart, valueEnd));
    }
    entries.push({
      nameIndex: entry.e_name_index,
      suffix,
      valueInode: entry.e_value_inum,
      valueSize: entry.e_value_size,
      value,
    });
    at += (XATTR_ENTRY_SIZE + entry.e_name_len + 3) & ~3;
  }
  return entries;
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
  const { readFile } = await import('./file-read.js');
  const value = await readFile(fs, entry.valueInode, { length: entry.valueSize });
  return { name, nameIndex: entry.nameIndex, value, location: 'ea-inode' };
}

function xattrError(
  fs: Filesystem,
  inode: Inode,
  what: string,
  block: number | undefined,
): E2imageError {
  return new E2imageError('BAD_XATTR', `inode ${inode.ino}: ${what}`, {
    path: fs.device.name,
    inode: inode.ino,
    block,
    structure:
      block === undefined ? `in-inode xattrs of inode ${inode.ino}` : `xattr block ${block}`,
  });
}
