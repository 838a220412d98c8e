import { throwIfAborted } from '@x/blockio';
import { verifyExtentBlockChecksum } from './checksum.js';
import { E2imageError } from './errors.js';
import type { Filesystem } from './filesystem.js';
import {
  EXT_INIT_MAX_LEN,
  EXT2_DIND_BLOCK,
  EXT2_IND_BLOCK,
  EXT2_NDIR_BLOCKS,
  EXT2_OS_HURD,
  EXT2_TIND_BLOCK,
  EXT3_EXT_MAGIC,
  EXT4_MAX_EXTENT_DEPTH,
} from './format/constants.js';
import {
  EE_BLOCK,
  EE_LEN,
  EE_START_HI,
  EE_START_LO,
  EH_DEPTH,
  EH_ENTRIES,
  EH_MAGIC,
  EH_MAX,
  EI_LEAF_HI,
  EI_LEAF_LO,
  EXTENT_ENTRY_SIZE,
  EXTENT_HEADER_SIZE,
  EXTENT_TAIL_SIZE,
} from './format/extent.js';
import type { Inode } from './inode.js';

/** Blocks that map a file rather than hold its contents. */
export type MappingBlockKind =
  | 'extent'
  | 'indirect'
  | 'double-indirect'
  | 'triple-indirect'
  | 'translator';

/**
 * What ext2fs_block_iterate3 reports, as runs: mapping blocks one at a time
 * (e2image's "blockcnt < 0"), file contents as runs of consecutive blocks.
 */
export interface BlockVisitor {
  mapping?(block: number, kind: MappingBlockKind): void;
  data?(logical: number, physical: number, count: number, unwritten: boolean): void;
}

export interface WalkOptions {
  /**
   * Report data blocks. Without it, indirect blocks whose entries are only data
   * pointers are range-checked but not read (their contents do not matter).
   */
  data: boolean;
  signal?: AbortSignal | undefined;
}

/**
 * Walks an inode's block map like ext2fs_block_iterate3 (READ_ONLY, not depth
 * first): Hurd translator, then the extent tree or the direct/indirect pointers.
 * Bad pointers raise BAD_EXTENT_TREE / BAD_INDIRECT_BLOCK naming inode and block.
 */
export async function walkInodeBlocks(
  fs: Filesystem,
  inode: Inode,
  visitor: BlockVisitor,
  options: WalkOptions,
): Promise<void> {
  if (walkInodeBlocksSync(fs, inode, visitor, options)) return;
  visitTranslator(fs, inode, visitor);
  if (inode.usesExtents) await walkExtentTree(fs, inode, visitor, options);
  else await walkBlockMap(fs, inode, visitor, options);
}

/**
 * The common cases that need no I/O: an extent tree entirely in the inode, or
 * a block map whose indirect blocks need not be read. Returns false (having
 * reported nothing) when the walk needs reads.
 */
export function walkInodeBlocksSync(
  fs: Filesystem,
  inode: Inode,
  visitor: BlockVisitor,
  options: WalkOptions,
): boolean {
  if (inode.usesExtents) {
    const root = inode.blockArea;
    if (isAllZero(root)) {
      visitTranslator(fs, inode, visitor);
      return true;
    }
    checkExtentHeader(fs, inode, root, root.length, undefined, undefined);
    if (root.readUInt16LE(EH_DEPTH) !== 0) return false;
    visitTranslator(fs, inode, visitor);
    visitLeaf(root, visitor);
    return true;
  }
  const needsRead =
    inode.blockPointer(EXT2_DIND_BLOCK) !== 0 ||
    inode.blockPointer(EXT2_TIND_BLOCK) !== 0 ||
    (options.data && inode.blockPointer(EXT2_IND_BLOCK) !== 0);
  if (needsRead) return false;
  visitTranslator(fs, inode, visitor);
  const runs = new RunCoalescer(visitor);
  for (let i = 0; i < EXT2_NDIR_BLOCKS; i++) {
    const block = inode.blockPointer(i);
    if (block !== 0) runs.add(i, block);
  }
  runs.flush();
  const ind = inode.blockPointer(EXT2_IND_BLOCK);
  if (ind !== 0) {
    visitor.mapping?.(ind, 'indirect');
    checkIndirect(fs, inode, ind, 'indirect block');
  }
  return true;
}

function visitTranslator(fs: Filesystem, inode: Inode, visitor: BlockVisitor): void {
  if (fs.superblock.s_creator_os === EXT2_OS_HURD && inode.translator !== 0) {
    visitor.mapping?.(inode.translator, 'translator');
  }
}

function isAllZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** ext2fs_extent_header_verify, plus the depth a child must have. */
function checkExtentHeader(
  fs: Filesystem,
  inode: Inode,
  node: Buffer,
  size: number,
  block: number | undefined,
  expectedDepth: number | undefined,
): void {
  const where = block === undefined ? 'extent tree root' : `extent tree block ${block}`;
  const fail = (what: string) =>
    new E2imageError('BAD_EXTENT_TREE', `inode ${inode.ino}: ${where}: ${what}`, {
      path: fs.device.name,
      inode: inode.ino,
      block,
      structure: where,
      offset: block === undefined ? undefined : block * fs.blockSize,
    });
  const magic = node.readUInt16LE(EH_MAGIC);
  if (magic !== EXT3_EXT_MAGIC) throw fail(`bad magic 0x${magic.toString(16)} (expected 0xf30a)`);
  const entries = node.readUInt16LE(EH_ENTRIES);
  const max = node.readUInt16LE(EH_MAX);
  if (entries > max) throw fail(`eh_entries ${entries} exceeds eh_max ${max}`);
  const capacity = Math.floor((size - EXTENT_HEADER_SIZE) / EXTENT_ENTRY_SIZE);
  // Two entries' worth of room may hold the checksum tail.
  if (max > capacity || max < capacity - 2) {
    throw fail(
      `eh_max ${max} does not fit a ${size}-byte node (expected ${capacity - 2}..${capacity})`,
    );
  }
  const depth = node.readUInt16LE(EH_DEPTH);
  if (expectedDepth === undefined && depth > EXT4_MAX_EXTENT_DEPTH) {
    throw fail(`depth ${depth} exceeds the maximum of ${EXT4_MAX_EXTENT_DEPTH}`);
  }
  if (expectedDepth !== undefined && depth !== expectedDepth) {
    throw fail(
      `depth ${depth} where the parent says ${expectedDepth} (a loop or a misplaced node)`,
    );
  }
}

function visitLeaf(node: Buffer, visitor: BlockVisitor): void {
  if (!visitor.data) return;
  const entries = node.readUInt16LE(EH_ENTRIES);
  for (let i = 0; i < entries; i++) {
    const at = EXTENT_HEADER_SIZE + i * EXTENT_ENTRY_SIZE;
    const rawLength = node.readUInt16LE(at + EE_LEN);
    const unwritten = rawLength > EXT_INIT_MAX_LEN;
    const length = unwritten ? rawLength - EXT_INIT_MAX_LEN : rawLength;
    if (length === 0) continue;
    const physical =
      node.readUInt32LE(at + EE_START_LO) + node.readUInt16LE(at + EE_START_HI) * 2 ** 32;
    visitor.data(node.readUInt32LE(at + EE_BLOCK), physical, length, unwritten);
  }
}

async function walkExtentTree(
  fs: Filesystem,
  inode: Inode,
  visitor: BlockVisitor,
  options: WalkOptions,
): Promise<void> {
  const root = Buffer.from(inode.blockArea);
  checkExtentHeader(fs, inode, root, root.length, undefined, undefined);
  const visited = new Set<number>();
  await walkExtentNode(fs, inode, visitor, options, root, root.readUInt16LE(EH_DEPTH), visited);
}

async function walkExtentNode(
  fs: Filesystem,
  inode: Inode,
  visitor: BlockVisitor,
  options: WalkOptions,
  node: Buffer,
  depth: number,
  visited: Set<number>,
): Promise<void> {
  if (depth === 0) {
    visitLeaf(node, visitor);
    return;
  }
  const entries = node.readUInt16LE(EH_ENTRIES);
  for (let i = 0; i < entries; i++) {
    throwIfAborted(options.signal, fs.device.name);
    const at = EXTENT_HEADER_SIZE + i * EXTENT_ENTRY_SIZE;
    const child = node.readUInt32LE(at + EI_LEAF_LO) + node.readUInt16LE(at + EI_LEAF_HI) * 2 ** 32;
    visitor.mapping?.(child, 'extent');
    fs.checkBlockRange(child, 1, 'BAD_EXTENT_TREE', `extent tree block ${child}`, {
      inode: inode.ino,
    });
    if (visited.has(child)) {
      throw new E2imageError(
        'BAD_EXTENT_TREE',
        `inode ${inode.ino}: extent tree block ${child} is referenced twice (a loop)`,
        {
          path: fs.device.name,
          inode: inode.ino,
          block: child,
          structure: `extent tree block ${child}`,
        },
      );
    }
    visited.add(child);
    const buffer = await fs.readBlocks(
      child,
      1,
      `extent tree block ${child} of inode ${inode.ino}`,
    );
    checkExtentHeader(fs, inode, buffer, fs.blockSize, child, depth - 1);
    if (fs.metadataChecksums) {
      const tail = EXTENT_HEADER_SIZE + buffer.readUInt16LE(EH_MAX) * EXTENT_ENTRY_SIZE;
      if (tail + EXTENT_TAIL_SIZE <= fs.blockSize) {
        const result = verifyExtentBlockChecksum(
          fs.checksumSeed,
          inode.ino,
          inode.generation,
          buffer,
          tail,
        );
        fs.checksums.record('extent block', result.ok, {
          inode: inode.ino,
          block: child,
          stored: result.stored,
          computed: result.computed,
        });
      }
    }
    await walkExtentNode(fs, inode, visitor, options, buffer, depth - 1, visited);
  }
}

function checkIndirect(fs: Filesystem, inode: Inode, block: number, structure: string): void {
  // block_iterate_ind: the callback has already seen the block; a pointer outside
  // the filesystem stops the walk with EXT2_ET_BAD_IND_BLOCK.
  fs.checkBlockRange(block, 1, 'BAD_INDIRECT_BLOCK', `${structure} ${block}`, { inode: inode.ino });
}

async function walkBlockMap(
  fs: Filesystem,
  inode: Inode,
  visitor: BlockVisitor,
  options: WalkOptions,
): Promise<void> {
  const perBlock = fs.blockSize / 4;
  const runs = new RunCoalescer(visitor);
  for (let i = 0; i < EXT2_NDIR_BLOCKS; i++) {
    const block = inode.blockPointer(i);
    if (block !== 0) runs.add(i, block);
  }
  let logical = EXT2_NDIR_BLOCKS;
  const indirect = async (block: number, base: number) => {
    visitor.mapping?.(block, 'indirect');
    checkIndirect(fs, inode, block, 'indirect block');
    if (!options.data) return;
    const entries = await fs.readBlocks(block, 1, `indirect block ${block} of inode ${inode.ino}`);
    for (let i = 0; i < perBlock; i++) {
      const target = entries.readUInt32LE(i * 4);
      if (target !== 0) runs.add(base + i, target);
    }
  };
  const doubleIndirect = async (block: number, base: number) => {
    visitor.mapping?.(block, 'double-indirect');
    checkIndirect(fs, inode, block, 'double-indirect block');
    const entries = await fs.readBlocks(
      block,
      1,
      `double-indirect block ${block} of inode ${inode.ino}`,
    );
    for (let i = 0; i < perBlock; i++) {
      const target = entries.readUInt32LE(i * 4);
      if (target !== 0) await indirect(target, base + i * perBlock);
    }
  };
  const ind = inode.blockPointer(EXT2_IND_BLOCK);
  if (ind !== 0) await indirect(ind, logical);
  logical += perBlock;
  const dind = inode.blockPointer(EXT2_DIND_BLOCK);
  if (dind !== 0) await doubleIndirect(dind, logical);
  logical += perBlock * perBlock;
  const tind = inode.blockPointer(EXT2_TIND_BLOCK);
  if (tind !== 0) {
    visitor.mapping?.(tind, 'triple-indirect');
    checkIndirect(fs, inode, tind, 'triple-indirect block');
    const entries = await fs.readBlocks(
      tind,
      1,
      `triple-indirect block ${tind} of inode ${inode.ino}`,
    );
    for (let i = 0; i < perBlock; i++) {
      throwIfAborted(options.signal, fs.device.name);
      const target = entries.readUInt32LE(i * 4);
      if (target !== 0) await doubleIndirect(target, logical + i * perBlock * perBlock);
    }
  }
  runs.flush();
}

/** Joins single-block data reports into runs of consecutive logical and physical blocks. */
class RunCoalescer {
  readonly #visitor: BlockVisitor;
  #logical = 0;
  #physical = 0;
  #count = 0;

  constructor(visitor: BlockVisitor) {
    this.#visitor = visitor;
  }

  add(logical: number, physical: number): void {
    if (!this.#visitor.data) return;
    if (
      this.#count > 0 &&
      logical === this.#logical + this.#count &&
      physical === this.#physical + this.#count
    ) {
      this.#count++;
      return;
    }
    this.flush();
    this.#logical = logical;
    this.#physical = physical;
    this.#count = 1;
  }

  flush(): void {
    if (this.#count > 0) this.#visitor.data?.(this.#logical, this.#physical, this.#count, false);
    this.#count = 0;
  }
}
