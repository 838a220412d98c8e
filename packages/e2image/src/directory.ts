import { verifyDirectoryBlockChecksum } from './checksum.js';
import { E2imageError } from './errors.js';
import { fileExtents } from './file-read.js';
import type { Filesystem } from './filesystem.js';
import { EXT2_DIR_NAME_LEN_CSUM, EXT2_ROOT_INO, EXT4_MAX_REC_LEN } from './format/constants.js';
import { DIRENT_HEADER_SIZE, DIRENT_TAIL_SIZE } from './format/directory.js';
import { Inode } from './inode.js';
import { inInodeXattr } from './xattr-entries.js';

export interface DirectoryEntry {
  readonly name: string;
  readonly nameBytes: Buffer;
  readonly inode: number;
  /** EXT2_FT_* (0 when the filetype feature is off). */
  readonly fileType: number;
}

/** ext2fs_get_rec_len: 0 and 65535 mean a whole 64 KiB block; low bits carry bits 16-17. */
export function decodeRecordLength(raw: number, blockSize: number): number {
  if (raw === EXT4_MAX_REC_LEN || raw === 0) return blockSize;
  return (raw & 65532) | ((raw & 3) << 16);
}

/**
 * Parses one linear directory block (htree interior blocks parse as a single
 * empty entry and yield nothing). Overlapping or runaway records raise
 * BAD_DIRECTORY naming the inode, block and byte.
 */
export function parseDirectoryBlock(
  fs: Filesystem,
  ino: number,
  block: Uint8Array,
  blockNumber: number | undefined,
  entries: DirectoryEntry[],
): void {
  const bytes = Buffer.from(block.buffer, block.byteOffset, block.byteLength);
  const size = bytes.length;
  let at = 0;
  while (at < size) {
    const fail = (what: string) =>
      new E2imageError(
        'BAD_DIRECTORY',
        `directory inode ${ino}${blockNumber === undefined ? ' (inline)' : `, block ${blockNumber}`}, byte ${at}: ${what}`,
        {
          path: fs.device.name,
          inode: ino,
          block: blockNumber,
          offset: blockNumber === undefined ? undefined : blockNumber * fs.blockSize + at,
          structure: `directory block${blockNumber === undefined ? '' : ` ${blockNumber}`}`,
        },
      );
    if (at + DIRENT_HEADER_SIZE > size) throw fail('record header runs past the end of the block');
    const inode = bytes.readUInt32LE(at);
    const recordLength = decodeRecordLength(bytes.readUInt16LE(at + 4), fs.blockSize);
    const nameLength = bytes[at + 6] as number;
    if (recordLength < DIRENT_HEADER_SIZE || recordLength % 4 !== 0) {
      throw fail(`rec_len ${recordLength} is not a multiple of 4 of at least 8`);
    }
    if (at + recordLength > size) {
      throw fail(`rec_len ${recordLength} runs past the end of the block (overlapping records)`);
    }
    if (DIRENT_HEADER_SIZE + nameLength > recordLength) {
      throw fail(`name_len ${nameLength} does not fit rec_len ${recordLength}`);
    }
    if (inode > fs.inodesCount) throw fail(`inode ${inode} does not exist`);
    const isTail =
      inode === 0 &&
      recordLength === DIRENT_TAIL_SIZE &&
      bytes.readUInt16LE(at + 6) === EXT2_DIR_NAME_LEN_CSUM &&
      at + recordLength === size;
    if (inode !== 0 && !isTail) {
      const nameBytes = Buffer.from(bytes.subarray(at + 8, at + 8 + nameLength));
      entries.push({
        name: nameBytes.toString('utf8'),
        nameBytes,
        inode,
        fileType: bytes[at + 7] as number,
      });
    }
    at += recordLength;
  }
}

/** Lists a directory: linear or htree blocks, or inline data. "." and ".." included. */
export async function listDirectory(
  fs: Filesystem,
  inodeOrNumber: Inode | number,
): Promise<DirectoryEntry[]> {
  const inode = inodeOrNumber instanceof Inode ? inodeOrNumber : await fs.readInode(inodeOrNumber);
  if (!inode.isDirectory) {
    // The same shape as lookupPath's: the device in `path`, what failed in `structure`.
    throw new E2imageError(
      'NOT_A_DIRECTORY',
      `cannot list inode ${inode.ino}: it is ${describeFileType(inode)}, not a directory`,
      { path: fs.device.name, inode: inode.ino, structure: `inode ${inode.ino}` },
    );
  }
  const entries: DirectoryEntry[] = [];
  if (inode.hasInlineData) {
    listInline(fs, inode, entries);
    return entries;
  }
  const tail = fs.metadataChecksums;
  for (const run of await fileExtents(fs, inode)) {
    if (run.unwritten) continue;
    const bytes = await fs.readBlocks(run.physical, run.count, `directory inode ${inode.ino}`);
    for (let i = 0; i < run.count; i++) {
      const block = bytes.subarray(i * fs.blockSize, (i + 1) * fs.blockSize);
      if (tail && hasChecksumTail(block)) {
        const check = verifyDirectoryBlockChecksum(
          fs.checksumSeed,
          inode.ino,
          inode.generation,
          block,
        );
        fs.checksums.record('directory block', check.ok, {
          inode: inode.ino,
          block: run.physical + i,
          stored: check.stored,
          computed: check.computed,
        });
      }
      parseDirectoryBlock(fs, inode.ino, block, run.physical + i, entries);
    }
  }
  return entries;
}

function hasChecksumTail(block: Buffer): boolean {
  const at = block.length - DIRENT_TAIL_SIZE;
  return (
    block.readUInt32LE(at) === 0 &&
    block.readUInt16LE(at + 4) === DIRENT_TAIL_SIZE &&
    block.readUInt16LE(at + 6) === EXT2_DIR_NAME_LEN_CSUM
  );
}

/** Inline directories: parent inode in the first 4 bytes of i_block, then entries; "system.data" continues them. */
function listInline(fs: Filesystem, inode: Inode, entries: DirectoryEntry[]): void {
  const area = inode.blockArea;
  const parent = area.readUInt32LE(0);
  entries.push({ name: '.', nameBytes: Buffer.from('.'), inode: inode.ino, fileType: 2 });
  entries.push({ name: '..', nameBytes: Buffer.from('..'), inode: parent, fileType: 2 });
  parseDirectoryBlock(fs, inode.ino, area.subarray(4), undefined, entries);
  const more = inInodeXattr(fs, inode, 7, 'data');
  if (more && more.length > 0) parseDirectoryBlock(fs, inode.ino, more, undefined, entries);
}

/** "a regular file", "a symbolic link", "a fifo"…: for messages about the wrong file type. */
function describeFileType(inode: Inode): string {
  if (inode.fileType === 'regular') return 'a regular file';
  if (inode.fileType === 'symlink') return 'a symbolic link';
  if (inode.fileType === 'unknown') return 'of an unknown type';
  return `a ${inode.fileType}`;
}

/**
 * Resolves an absolute path ("/a/b/c") to an inode number, without following
 * symlinks. Its errors keep `path` for the device, like every error here, and
 * name the path inside the filesystem in `structure` (`path "/a/b/c"`) and the
 * component that failed in the message.
 */
export async function lookupPath(fs: Filesystem, path: string): Promise<number> {
  const structure = `path ${JSON.stringify(path)}`;
  let current = EXT2_ROOT_INO;
  let resolved = '';
  for (const part of path.split('/').filter((component) => component.length > 0)) {
    const here = resolved === '' ? '/' : resolved;
    const inode = await fs.readInode(current);
    if (!inode.isDirectory) {
      const what =
        inode.fileType === 'symlink'
          ? `${describeFileType(inode)} (lookupPath does not follow links)`
          : describeFileType(inode);
      throw new E2imageError(
        'NOT_A_DIRECTORY',
        `cannot look up "${part}": ${JSON.stringify(here)} (inode ${current}) is ${what}, not a directory`,
        { path: fs.device.name, inode: current, structure },
      );
    }
    const found = (await listDirectory(fs, inode)).find((entry) => entry.name === part);
    if (!found) {
      throw new E2imageError(
        'NOT_FOUND',
        `no entry "${part}" in directory ${JSON.stringify(here)} (inode ${current})`,
        { path: fs.device.name, inode: current, structure },
      );
    }
    resolved = `${resolved}/${part}`;
    current = found.inode;
  }
  return current;
}
