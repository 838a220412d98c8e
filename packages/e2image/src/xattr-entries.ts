import { E2imageError } from './errors.js';
import type { Filesystem } from './filesystem.js';
import {
  EXT2_EXT_ATTR_MAGIC_IN_INODE,
  XATTR_ENTRY_SIZE,
  xattrEntryStruct,
} from './format/xattr.js';
import type { Inode } from './inode.js';

/*
 * Parsing of xattr entries (in the inode's extra space or an xattr block),
 * without following values stored in EA inodes: file-read.ts needs the in-inode
 * "system.data" for inline data, and xattr.ts reads EA inode values through
 * file-read.ts, so this part sits below both.
 */

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

export interface RawEntry {
  nameIndex: number;
  suffix: string;
  valueInode: number;
  valueSize: number;
  value: Buffer;
}

export function inInodeEntries(fs: Filesystem, inode: Inode): RawEntry[] {
  const extra = inode.extraIsize;
  if (fs.inodeSize <= 128 || extra === 0) return [];
  const start = 128 + extra;
  if (start + 4 > inode.bytes.length) return [];
  if (inode.bytes.readUInt32LE(start) !== EXT2_EXT_ATTR_MAGIC_IN_INODE) return [];
  const area = inode.bytes.subarray(start + 4);
  return parseEntries(fs, inode, area, 0, 0, undefined);
}

export function parseEntries(
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

export function xattrError(
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
