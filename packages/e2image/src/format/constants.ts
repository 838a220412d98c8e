/**
 * Constants named as e2fsprogs' lib/ext2fs/ext2_fs.h and the kernel's
 * Documentation/filesystems/ext4 name them.
 */

/** ext4 "Super Block": magic at s_magic. */
export const EXT2_SUPER_MAGIC = 0xef53;
/** The primary superblock always starts 1024 bytes into the device. */
export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 1024;

export const EXT2_MIN_BLOCK_LOG_SIZE = 10;
export const EXT2_MAX_BLOCK_LOG_SIZE = 16;
export const EXT2_MIN_BLOCK_SIZE = 1 << EXT2_MIN_BLOCK_LOG_SIZE;
export const EXT2_MAX_BLOCK_SIZE = 1 << EXT2_MAX_BLOCK_LOG_SIZE;
/** Cluster size is at most 2^29 bytes (ext2fs_open2's check on s_log_cluster_size). */
export const EXT2_MAX_CLUSTER_LOG_SIZE = 29;

export const EXT2_GOOD_OLD_REV = 0;
export const EXT2_DYNAMIC_REV = 1;
export const EXT2_GOOD_OLD_INODE_SIZE = 128;
export const EXT2_GOOD_OLD_FIRST_INO = 11;

export const EXT2_MIN_DESC_SIZE = 32;
export const EXT2_MIN_DESC_SIZE_64BIT = 64;
export const EXT2_MAX_DESC_SIZE = EXT2_MIN_BLOCK_SIZE;

/** s_creator_os */
export const EXT2_OS_HURD = 1;

/** s_state */
export const EXT2_VALID_FS = 0x0001;
export const EXT2_ERROR_FS = 0x0002;

// Reserved inode numbers (ext2_fs.h "Special inode numbers").
export const EXT2_BAD_INO = 1;
export const EXT2_ROOT_INO = 2;
export const EXT4_USR_QUOTA_INO = 3;
export const EXT4_GRP_QUOTA_INO = 4;
export const EXT2_BOOT_LOADER_INO = 5;
export const EXT2_UNDEL_DIR_INO = 6;
export const EXT2_RESIZE_INO = 7;
export const EXT2_JOURNAL_INO = 8;

// s_feature_compat
export const EXT2_FEATURE_COMPAT_DIR_PREALLOC = 0x0001;
export const EXT2_FEATURE_COMPAT_IMAGIC_INODES = 0x0002;
export const EXT3_FEATURE_COMPAT_HAS_JOURNAL = 0x0004;
export const EXT2_FEATURE_COMPAT_EXT_ATTR = 0x0008;
export const EXT2_FEATURE_COMPAT_RESIZE_INODE = 0x0010;
export const EXT2_FEATURE_COMPAT_DIR_INDEX = 0x0020;
export const EXT2_FEATURE_COMPAT_LAZY_BG = 0x0040;
export const EXT2_FEATURE_COMPAT_EXCLUDE_BITMAP = 0x0100;
export const EXT4_FEATURE_COMPAT_SPARSE_SUPER2 = 0x0200;
export const EXT4_FEATURE_COMPAT_FAST_COMMIT = 0x0400;
export const EXT4_FEATURE_COMPAT_STABLE_INODES = 0x0800;
export const EXT4_FEATURE_COMPAT_ORPHAN_FILE = 0x1000;

// s_feature_incompat
export const EXT2_FEATURE_INCOMPAT_COMPRESSION = 0x0001;
export const EXT2_FEATURE_INCOMPAT_FILETYPE = 0x0002;
export const EXT3_FEATURE_INCOMPAT_RECOVER = 0x0004;
export const EXT3_FEATURE_INCOMPAT_JOURNAL_DEV = 0x0008;
export const EXT2_FEATURE_INCOMPAT_META_BG = 0x0010;
export const EXT3_FEATURE_INCOMPAT_EXTENTS = 0x0040;
export const EXT4_FEATURE_INCOMPAT_64BIT = 0x0080;
export const EXT4_FEATURE_INCOMPAT_MMP = 0x0100;
export const EXT4_FEATURE_INCOMPAT_FLEX_BG = 0x0200;
export const EXT4_FEATURE_INCOMPAT_EA_INODE = 0x0400;
export const EXT4_FEATURE_INCOMPAT_DIRDATA = 0x1000;
export const EXT4_FEATURE_INCOMPAT_CSUM_SEED = 0x2000;
export const EXT4_FEATURE_INCOMPAT_LARGEDIR = 0x4000;
export const EXT4_FEATURE_INCOMPAT_INLINE_DATA = 0x8000;
export const EXT4_FEATURE_INCOMPAT_ENCRYPT = 0x10000;
export const EXT4_FEATURE_INCOMPAT_CASEFOLD = 0x20000;

/** Incompat bits this reader understands (the rest make open() refuse, as libext2fs does). */
export const SUPPORTED_INCOMPAT =
  EXT2_FEATURE_INCOMPAT_FILETYPE |
  EXT3_FEATURE_INCOMPAT_RECOVER |
  EXT2_FEATURE_INCOMPAT_META_BG |
  EXT3_FEATURE_INCOMPAT_EXTENTS |
  EXT4_FEATURE_INCOMPAT_64BIT |
  EXT4_FEATURE_INCOMPAT_MMP |
  EXT4_FEATURE_INCOMPAT_FLEX_BG |
  EXT4_FEATURE_INCOMPAT_EA_INODE |
  EXT4_FEATURE_INCOMPAT_CSUM_SEED |
  EXT4_FEATURE_INCOMPAT_LARGEDIR |
  EXT4_FEATURE_INCOMPAT_INLINE_DATA |
  EXT4_FEATURE_INCOMPAT_ENCRYPT |
  EXT4_FEATURE_INCOMPAT_CASEFOLD;

// s_feature_ro_compat
export const EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER = 0x0001;
export const EXT2_FEATURE_RO_COMPAT_LARGE_FILE = 0x0002;
export const EXT2_FEATURE_RO_COMPAT_BTREE_DIR = 0x0004;
export const EXT4_FEATURE_RO_COMPAT_HUGE_FILE = 0x0008;
export const EXT4_FEATURE_RO_COMPAT_GDT_CSUM = 0x0010;
export const EXT4_FEATURE_RO_COMPAT_DIR_NLINK = 0x0020;
export const EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE = 0x0040;
export const EXT4_FEATURE_RO_COMPAT_HAS_SNAPSHOT = 0x0080;
export const EXT4_FEATURE_RO_COMPAT_QUOTA = 0x0100;
export const EXT4_FEATURE_RO_COMPAT_BIGALLOC = 0x0200;
export const EXT4_FEATURE_RO_COMPAT_METADATA_CSUM = 0x0400;
export const EXT4_FEATURE_RO_COMPAT_REPLICA = 0x0800;
export const EXT4_FEATURE_RO_COMPAT_READONLY = 0x1000;
export const EXT4_FEATURE_RO_COMPAT_PROJECT = 0x2000;
export const EXT4_FEATURE_RO_COMPAT_SHARED_BLOCKS = 0x4000;
export const EXT4_FEATURE_RO_COMPAT_VERITY = 0x8000;
export const EXT4_FEATURE_RO_COMPAT_ORPHAN_PRESENT = 0x10000;

// bg_flags
export const EXT2_BG_INODE_UNINIT = 0x0001;
export const EXT2_BG_BLOCK_UNINIT = 0x0002;
export const EXT2_BG_INODE_ZEROED = 0x0004;

// i_mode file types
export const LINUX_S_IFMT = 0o170000;
export const LINUX_S_IFSOCK = 0o140000;
export const LINUX_S_IFLNK = 0o120000;
export const LINUX_S_IFREG = 0o100000;
export const LINUX_S_IFBLK = 0o060000;
export const LINUX_S_IFDIR = 0o040000;
export const LINUX_S_IFCHR = 0o020000;
export const LINUX_S_IFIFO = 0o010000;

// i_flags
export const EXT2_INDEX_FL = 0x00001000;
export const EXT4_HUGE_FILE_FL = 0x00040000;
export const EXT4_EXTENTS_FL = 0x00080000;
export const EXT4_EA_INODE_FL = 0x00200000;
export const EXT4_INLINE_DATA_FL = 0x10000000;

// i_block slots
export const EXT2_NDIR_BLOCKS = 12;
export const EXT2_IND_BLOCK = 12;
export const EXT2_DIND_BLOCK = 13;
export const EXT2_TIND_BLOCK = 14;
export const EXT2_N_BLOCKS = 15;

/** Extent tree header magic (ext3_extents.h). */
export const EXT3_EXT_MAGIC = 0xf30a;
/** The kernel never builds trees deeper than this; deeper means corruption. */
export const EXT4_MAX_EXTENT_DEPTH = 5;
/** ee_len above this marks an unwritten (uninitialised) extent. */
export const EXT_INIT_MAX_LEN = 1 << 15;

/** Extended attribute block magic (ext2_ext_attr.h). */
export const EXT2_EXT_ATTR_MAGIC = 0xea020000;
export const EXT2_EXT_ATTR_MAGIC_v1 = 0xea010000;

/** Directory entry file types (ext2_fs.h EXT2_FT_*). */
export const EXT2_FT_UNKNOWN = 0;
export const EXT2_FT_REG_FILE = 1;
export const EXT2_FT_DIR = 2;
export const EXT2_FT_CHRDEV = 3;
export const EXT2_FT_BLKDEV = 4;
export const EXT2_FT_FIFO = 5;
export const EXT2_FT_SOCK = 6;
export const EXT2_FT_SYMLINK = 7;
/** File type byte of the metadata_csum directory tail ("fake" entry). */
export const EXT2_DIR_NAME_LEN_CSUM = 0xde00;
export const EXT4_MAX_REC_LEN = (1 << 16) - 1;

/** e2image normal image header magic: com_err code EXT2_ET_MAGIC_E2IMAGE. */
export const EXT2_ET_MAGIC_E2IMAGE = 0x7f2bb710;
export const E2IMAGE_MAGIC_DESCRIPTOR = 'Ext2 Image 1.0';

/** MMP block magic (ext2_fs.h struct mmp_struct). */
export const EXT4_MMP_MAGIC = 0x004d4d50;
