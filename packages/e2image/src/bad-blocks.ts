import { BlockIoError, ExtentSet } from '@x/blockio';
import { walkInodeBlocks } from './block-walk.js';
import type { Filesystem } from './filesystem.js';
import { EXT2_BAD_INO, EXT4_INLINE_DATA_FL } from './format/constants.js';

/**
 * The bad-block list as libext2fs' inode scan sees it (ext2fs_read_bb_inode):
 * the data blocks of inode 1 that lie inside the filesystem; its mapping blocks
 * and out-of-range numbers are not listed. A list libext2fs cannot read (a
 * block map walk that fails) is no list at all: the scan then checks nothing.
 * Returned as block numbers in an ExtentSet.
 */
export async function readBadBlockList(
  fs: Filesystem,
  signal?: AbortSignal | undefined,
): Promise<ExtentSet> {
  const list = new ExtentSet();
  try {
    const inode = await fs.readInode(EXT2_BAD_INO);
    // ext2fs_block_iterate refuses inline data: no list.
    if (inode.flags & EXT4_INLINE_DATA_FL) return list;
    await walkInodeBlocks(
      fs,
      inode,
      {
        data: (_logical, physical, count) => {
          const from = Math.max(physical, fs.firstDataBlock);
          const to = Math.min(physical + count, fs.blocksCount);
          if (to > from) list.add(from, to - from);
        },
      },
      { data: true, signal },
    );
  } catch (error) {
    if (!(error instanceof BlockIoError) || error.code === 'ABORTED') throw error;
    fs.warn({
      code: 'BAD_BLOCK_LIST',
      message: `the bad-block inode (1) cannot be walked (${error.message}); no blocks are treated as bad, as e2image does`,
      inode: EXT2_BAD_INO,
    });
    return new ExtentSet();
  }
  return list;
}
