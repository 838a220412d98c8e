import { throwIfAborted } from '@x/blockio';
import { verifyExtentBlockChecksum } from './checksum.js';
import { E2imageError } from './errors.js';
import { type Filesystem, readExact } from './filesystem.js';
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
  /**
   * Throw where ext2fs_block_iterate3 carries on: an extent root that fails
   * ext2fs_extent_header_verify (libext2fs then silently walks nothing), and a
   * mapping block referenced twice (libext2fs walks it again). Reading a file
   * wants this; imaging (e2image's bytes) does not. Default false: warn and
   * carry on, walking each mapping block once so that shared or self-referencing
   * blocks cannot multiply the work.
   */
  strict?: boolean | undefined;
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
    // A tree with index levels is left to the async walk, which checks (and
    // reports on) the root itself: checking it here too would report twice.
    const depth = root.readUInt16LE(EH_DEPTH);
    if (depth !== 0 && extentHeaderProblem(root, root.length) === undefined) return false;
    if (isAllZero(root) || !usableExtentRoot(fs, inode, root, options)) {
      visitTranslator(fs, inode, visitor);
      return true;
    }
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

/**
 * ext2fs_extent_open2 verifies the root header (magic, entries, eh_max) and
 * ext2fs_block_iterate3 returns success without walking anything when that
 * fails, so e2image copies none of the inode's blocks and says nothing. Strict
 * walks throw; lenient ones warn and skip the tree. A depth past the format's
 * maximum is not one of libext2fs' checks either: strict walks throw, lenient
 * ones warn and walk it (e2image images such a tree).
 */
function usableExtentRoot(
  fs: Filesystem,
  inode: Inode,
  root: Buffer,
  options: Pick<WalkOptions, 'strict'>,
): boolean {
  const problem = extentHeaderProblem(root, root.length);
  if (problem !== undefined) {
    if (options.strict) throw extentTreeError(fs, inode, undefined, problem);
    fs.warn({
      code: 'EXTENT_TREE_SKIPPED',
      message: `inode ${inode.ino}: extent tree root: ${problem}; its blocks are left out, as e2image does`,
      inode: inode.ino,
    });
    return false;
  }
  checkExtentHeader(fs, inode, root, root.length, undefined, undefined, options);
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

/** What ext2fs_extent_header_verify rejects in a node of `size` bytes, or undefined. */
function extentHeaderProblem(node: Buffer, size: number): string | undefined {
  const magic = node.readUInt16LE(EH_MAGIC);
  if (magic !== EXT3_EXT_MAGIC) return `bad magic 0x${magic.toString(16)} (expected 0xf30a)`;
  const entries = node.readUInt16LE(EH_ENTRIES);
  const max = node.readUInt16LE(EH_MAX);
  if (entries > max) return `eh_entries ${entries} exceeds eh_max ${max}`;
  const capacity = Math.floor((size - EXTENT_HEADER_SIZE) / EXTENT_ENTRY_SIZE);
  // Two entries' worth of room may hold the checksum tail.
  if (max > capacity || max < capacity - 2) {
    return `eh_max ${max} does not fit a ${size}-byte node (expected ${capacity - 2}..${capacity})`;
  }
  return undefined;
}

function extentTreeError(
  fs: Filesystem,
  inode: Inode,
  block: number | undefined,
  what: string,
): E2imageError {
  const where = block === undefined ? 'extent tree root' : `extent tree block ${block}`;
  // describe() puts `where` and the offset in front; the message names the inode.
  return new E2imageError('BAD_EXTENT_TREE', `inode ${inode.ino}: ${what}`, {
    path: fs.device.name,
    inode: inode.ino,
    block,
    structure: where,
    offset: block === undefined ? undefined : block * fs.blockSize,
  });
}

/**
 * ext2fs_extent_header_verify, plus the depth: past the format's maximum at the
 * root, or not one less than the parent's in a child. libext2fs checks neither:
 * it takes the root's depth and counts levels down from it, whatever a child's
 * eh_depth says, so e2image images such trees. Strict walks (reading a file)
 * throw; lenient ones warn once per inode and follow the levels as libext2fs does.
 */
function checkExtentHeader(
  fs: Filesystem,
  inode: Inode,
  node: Buffer,
  size: number,
  block: number | undefined,
  expectedDepth: number | undefined,
  options: Pick<WalkOptions, 'strict'>,
  walk?: ExtentWalk,
): void {
  const problem = extentHeaderProblem(node, size);
  if (problem !== undefined) throw extentTreeError(fs, inode, block, problem);
  const depth = node.readUInt16LE(EH_DEPTH);
  let what: string | undefined;
  if (expectedDepth === undefined && depth > EXT4_MAX_EXTENT_DEPTH) {
    what = `depth ${depth} exceeds the maximum of ${EXT4_MAX_EXTENT_DEPTH}`;
  } else if (expectedDepth !== undefined && depth !== expectedDepth) {
    what = `depth ${depth} where the parent says ${expectedDepth} (a loop or a misplaced node)`;
  }
  if (what === undefined) return;
  if (options.strict) throw extentTreeError(fs, inode, block, what);
  if (walk?.depthWarned) return;
  if (walk) walk.depthWarned = true;
  const where = block === undefined ? 'extent tree root' : `extent tree block ${block}`;
  fs.warn({
    code: 'EXTENT_TREE_DEPTH',
    message: `inode ${inode.ino}: ${where}: ${what}; walked by the root's depth, as e2image does`,
    inode: inode.ino,
    ...(block === undefined ? {} : { block }),
  });
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
  if (!usableExtentRoot(fs, inode, root, options)) return;
  const walk: ExtentWalk = {
    visited: new Set<number>(),
    ancestors: new Set<number>(),
    warned: false,
    depthWarned: false,
  };
  await walkExtentNode(fs, inode, visitor, options, root, root.readUInt16LE(EH_DEPTH), walk);
}

/** Bounds an extent walk: each tree block is read once, whatever points at it. */
interface ExtentWalk {
  readonly visited: Set<number>;
  /** Blocks on the path from the root to the node being walked. */
  readonly ancestors: Set<number>;
  warned: boolean;
  /** A depth problem was reported for this inode (once is enough). */
  depthWarned: boolean;
}

async function walkExtentNode(
  fs: Filesystem,
  inode: Inode,
  visitor: BlockVisitor,
  options: WalkOptions,
  node: Buffer,
  depth: number,
  walk: ExtentWalk,
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
    // libext2fs (since 1.46.6) refuses a child that is one of its own ancestors.
    if (walk.ancestors.has(child)) {
      throw extentTreeError(
        fs,
        inode,
        child,
        `extent tree block ${child} points back at one of its own parents (a cycle)`,
      );
    }
    if (walk.visited.has(child)) {
      // Two index entries sharing a subtree: libext2fs walks it again and finds
      // the same blocks, so walking it once gives e2image's set.
      const what = 'is referenced by more than one index entry';
      if (options.strict) throw extentTreeError(fs, inode, child, what);
      if (!walk.warned) {
        walk.warned = true;
        fs.warn({
          code: 'MAPPING_BLOCK_REUSED',
          message: `inode ${inode.ino}: extent tree block ${child} ${what}; walked once`,
          inode: inode.ino,
          block: child,
        });
      }
      continue;
    }
    walk.visited.add(child);
    const buffer = await readMappingBlock(fs, inode, child, `extent tree block ${child}`);
    checkExtentHeader(fs, inode, buffer, fs.blockSize, child, depth - 1, options, walk);
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
    walk.ancestors.add(child);
    await walkExtentNode(fs, inode, visitor, options, buffer, depth - 1, walk);
    walk.ancestors.delete(child);
  }
}

/**
 * What block_iterate_ind finds wrong with an indirect block pointer before it
 * reads the block: outside the filesystem (EXT2_ET_BAD_IND_BLOCK), or past the
 * end of a truncated device (the read fails). libext2fs reads every indirect
 * block, even where only its number matters, so the device check applies even
 * when we would not read it.
 */
function indirectProblem(
  fs: Filesystem,
  inode: Inode,
  block: number,
  structure: string,
): E2imageError | undefined {
  const context = {
    path: fs.device.name,
    inode: inode.ino,
    block,
    offset: block * fs.blockSize,
    structure: `${structure} ${block}`,
  };
  if (block < fs.firstDataBlock || block >= fs.blocksCount) {
    return new E2imageError(
      'BAD_INDIRECT_BLOCK',
      `inode ${inode.ino}: block ${block} lies outside the filesystem (blocks ${fs.firstDataBlock}..${fs.blocksCount - 1})`,
      context,
    );
  }
  if ((block + 1) * fs.blockSize > fs.device.size && !fs.device.zeroExtends) {
    return new E2imageError(
      'TRUNCATED',
      `inode ${inode.ino}: block ${block} lies past the end of the device (${fs.device.size} bytes)`,
      context,
    );
  }
  return undefined;
}

function checkIndirect(fs: Filesystem, inode: Inode, block: number, structure: string): void {
  const problem = indirectProblem(fs, inode, block, structure);
  if (problem) throw problem;
}

/** One extent or indirect block; a device too short for it is TRUNCATED naming the inode. */
function readMappingBlock(
  fs: Filesystem,
  inode: Inode,
  block: number,
  structure: string,
): Promise<Buffer> {
  return readExact(fs.device, block * fs.blockSize, fs.blockSize, structure, {
    block,
    inode: inode.ino,
  });
}

/** Indirect levels, for messages and for the walked-once sets. */
const INDIRECT_KINDS = ['indirect', 'double-indirect', 'triple-indirect'] as const;

type Level = 0 | 1 | 2;

/**
 * The block map walk of ext2fs_block_iterate3, including how it reports errors:
 * a bad pointer ends the walk of the (double/triple-)indirect block holding it,
 * but the inode's next top-level pointer is still walked, and libext2fs keeps
 * only the last status of its reads: a later indirect block read successfully
 * clears the error, and e2image carries on. So the walk remembers the pending
 * error and throws it only if nothing cleared it (strict walks throw at once).
 */
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
  let pending: E2imageError | undefined;
  let cleared: E2imageError | undefined;
  const fail = (error: E2imageError): false => {
    if (options.strict) throw error;
    cleared ??= pending;
    pending = error;
    return false;
  };
  // The read libext2fs makes of a good indirect block resets its status.
  const succeed = () => {
    cleared ??= pending;
    pending = undefined;
  };
  // libext2fs has no loop check for block maps: a (double-)indirect block that
  // points at itself or at a sibling is walked again each time, up to
  // perBlock^3 times. Walking a block again at the same level finds the same
  // blocks and ends the same way, so each (block, level) is walked once and its
  // outcome remembered: the same set and the same status, bounded work.
  const outcomes = [
    new Map<number, boolean>(),
    new Map<number, boolean>(),
    new Map<number, boolean>(),
  ];
  let warned = false;
  const repeat = (block: number, level: Level, ok: boolean): boolean => {
    const kind = INDIRECT_KINDS[level];
    const message = `inode ${inode.ino}: ${kind} block ${block} is referenced more than once`;
    if (options.strict) {
      throw new E2imageError('BAD_INDIRECT_BLOCK', message, {
        path: fs.device.name,
        inode: inode.ino,
        block,
        offset: block * fs.blockSize,
        structure: `${kind} block ${block}`,
      });
    }
    if (!warned) {
      warned = true;
      fs.warn({
        code: 'MAPPING_BLOCK_REUSED',
        message: `${message}; walked once`,
        inode: inode.ino,
        block,
      });
    }
    if (ok) succeed();
    return ok;
  };
  /** Walks one mapping block; false when libext2fs would report BLOCK_ERROR. */
  const walk = async (block: number, level: Level, base: number): Promise<boolean> => {
    const kind = INDIRECT_KINDS[level];
    visitor.mapping?.(block, kind);
    const seen = outcomes[level] as Map<number, boolean>;
    const known = seen.get(block);
    if (known !== undefined) return repeat(block, level, known);
    const problem = indirectProblem(fs, inode, block, `${kind} block`);
    if (problem) {
      seen.set(block, false);
      return fail(problem);
    }
    succeed();
    let ok = true;
    if (level > 0 || options.data) {
      const entries = await readMappingBlock(fs, inode, block, `${kind} block ${block}`);
      const span = perBlock ** level;
      for (let i = 0; i < perBlock; i++) {
        if (level === 2) throwIfAborted(options.signal, fs.device.name);
        const target = entries.readUInt32LE(i * 4);
        if (target === 0) continue;
        if (level === 0) runs.add(base + i, target);
        else if (!(await walk(target, (level - 1) as Level, base + i * span))) {
          ok = false;
          break;
        }
      }
    }
    seen.set(block, ok);
    return ok;
  };
  let logical = EXT2_NDIR_BLOCKS;
  for (const level of [0, 1, 2] as const) {
    const block = inode.blockPointer(EXT2_IND_BLOCK + level);
    if (block !== 0) await walk(block, level, logical);
    logical += perBlock ** (level + 1);
  }
  runs.flush();
  if (pending) throw pending;
  if (cleared) {
    fs.warn({
      code: 'BAD_BLOCK_MAP',
      message: `${cleared.message}; the rest of that mapping block is left out and the walk goes on, as e2image does`,
      inode: inode.ino,
      block: cleared.block,
    });
  }
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
