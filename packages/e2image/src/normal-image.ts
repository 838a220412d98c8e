import { stat } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import {
  type BlockDevice,
  checkedAdd,
  checkedMul,
  createOutputFile,
  FileDevice,
  isAllZero,
  type LongRunningOptions,
  ProgressTracker,
  throwIfAborted,
} from '@x/blockio';
import { bitmapBytesPerGroup, readBitmaps, reportBitmapMismatches } from './bitmaps.js';
import { E2imageError } from './errors.js';
import { type Filesystem, readExact } from './filesystem.js';
import {
  E2IMAGE_MAGIC_DESCRIPTOR,
  EXT2_ET_MAGIC_E2IMAGE,
  SUPERBLOCK_SIZE,
} from './format/constants.js';
import { type ImageHeader, imageHeaderStruct } from './format/image-header.js';

/**
 * e2image's "normal" image (no -r/-Q): a header block, the superblock and group
 * descriptors, every group's whole inode table (all-zero blocks left as holes),
 * then the block and inode bitmaps — the layout of write_image_file and
 * lib/ext2fs/imager.c, readable by dumpe2fs -i, debugfs -i and e2image -I.
 */
export interface NormalImageOptions extends LongRunningOptions {
  /** Recorded as fs_device_name (default: the device's name). */
  deviceName?: string | undefined;
  /** Recorded as fs_hostname (default: os.hostname()). */
  hostname?: string | undefined;
  /** Recorded as image_time (default: now). */
  time?: Date | undefined;
}

export interface NormalImageResult {
  /** Bytes the image spans (its file length). */
  imageSize: number;
  /** Bytes actually written (zero inode table blocks are holes). */
  bytesWritten: number;
  header: ImageHeader;
}

/** Offsets in the header are 32-bit: a larger image cannot be described. */
const MAX_OFFSET = 2 ** 32 - 1;

/** Where the pieces of a normal image go: known before anything is read or written. */
interface NormalImageLayout {
  offsetSuper: number;
  offsetInode: number;
  offsetBlockmap: number;
  offsetInodemap: number;
  imageSize: number;
}

/**
 * The layout of write_image_file: header block, superblock block, descriptors,
 * every group's whole inode table, then the bitmaps padded to whole blocks. It
 * depends only on the geometry, so an image the header cannot describe is
 * refused before the first byte is written.
 */
function normalImageLayout(fs: Filesystem, targetName: string): NormalImageLayout {
  const blockSize = fs.blockSize;
  const offsetSuper = blockSize;
  const offsetInode = offsetSuper + blockSize + fs.descriptorTable.length;
  const tableBytes = checkedMul(fs.inodeBlocksPerGroup, blockSize, 'inode table bytes');
  const offsetBlockmap = checkedAdd(
    offsetInode,
    checkedMul(tableBytes, fs.groupCount, 'inode tables bytes'),
    'block bitmap offset',
  );
  const perGroup = bitmapBytesPerGroup(fs);
  const offsetInodemap = offsetBlockmap + paddedLength(perGroup.block * fs.groupCount, blockSize);
  const imageSize = offsetInodemap + paddedLength(perGroup.inode * fs.groupCount, blockSize);
  if (offsetInodemap > MAX_OFFSET) {
    throw new E2imageError(
      'TOO_LARGE',
      `a normal image of this filesystem would need offsets beyond 4 GiB (${offsetInodemap}), which its header cannot record; use a raw (-r) or QCOW2 (-Q) image`,
      { path: targetName, structure: 'e2image header' },
    );
  }
  return { offsetSuper, offsetInode, offsetBlockmap, offsetInodemap, imageSize };
}

export async function writeNormalImage(
  fs: Filesystem,
  target: BlockDevice,
  options: NormalImageOptions = {},
): Promise<NormalImageResult> {
  const blockSize = fs.blockSize;
  const { offsetSuper, offsetInode, offsetBlockmap, offsetInodemap, imageSize } = normalImageLayout(
    fs,
    target.name,
  );
  let bytesWritten = 0;
  const write = async (offset: number, data: Uint8Array) => {
    await target.write(offset, data);
    bytesWritten += data.byteLength;
  };
  const superBlock = Buffer.alloc(blockSize);
  fs.superblockBytes.copy(superBlock, 0, 0, SUPERBLOCK_SIZE);
  await write(offsetSuper, superBlock);
  await write(offsetSuper + blockSize, fs.descriptorTable);

  // Inode tables, group after group, whole (inode_blocks_per_group each).
  const tableBytes = fs.inodeBlocksPerGroup * blockSize;
  const progress = new ProgressTracker(
    'inode tables',
    tableBytes * fs.groupCount,
    options.onProgress,
  );
  const chunkBlocks = Math.max(1, Math.floor((1 << 20) / blockSize));
  const buffer = Buffer.allocUnsafe(chunkBlocks * blockSize);
  let position = offsetInode;
  for (let group = 0; group < fs.groupCount; group++) {
    const table = fs.inodeTableLocation(group);
    for (let done = 0; done < fs.inodeBlocksPerGroup; done += chunkBlocks) {
      throwIfAborted(options.signal, fs.device.name);
      const count = Math.min(chunkBlocks, fs.inodeBlocksPerGroup - done);
      const chunk = await fs.readBlocks(
        table + done,
        count,
        `inode table of group ${group}`,
        buffer,
      );
      // Runs of non-zero blocks are written; zero blocks stay holes (IMAGER_FLAG_SPARSEWRITE).
      let runStart = -1;
      for (let i = 0; i <= count; i++) {
        const zero = i === count || isAllZero(chunk.subarray(i * blockSize, (i + 1) * blockSize));
        if (!zero && runStart < 0) runStart = i;
        if (zero && runStart >= 0) {
          await write(
            position + runStart * blockSize,
            chunk.subarray(runStart * blockSize, i * blockSize),
          );
          runStart = -1;
        }
      }
      position += count * blockSize;
      progress.advance(count * blockSize);
    }
  }
  progress.finish();

  const bitmaps = await readBitmaps(fs);
  reportBitmapMismatches(fs, bitmaps);
  await write(offsetBlockmap, padToBlock(bitmaps.block, blockSize));
  await write(offsetInodemap, padToBlock(bitmaps.inode, blockSize));

  const identity = await fileIdentity(target);
  const deviceName = options.deviceName ?? fs.device.name;
  const time = Math.floor((options.time ?? new Date()).getTime() / 1000);
  const header: ImageHeader = {
    magic_number: EXT2_ET_MAGIC_E2IMAGE,
    magic_descriptor: E2IMAGE_MAGIC_DESCRIPTOR,
    fs_hostname: truncate(options.hostname ?? osHostname(), 64),
    fs_netaddr: new Uint8Array(32),
    fs_netaddr_type: 0,
    fs_device: await deviceNumber(deviceName),
    fs_device_name: truncate(deviceName, 63),
    fs_uuid: fs.superblock.s_uuid,
    fs_blocksize: blockSize,
    fs_reserved: new Uint8Array(32),
    image_device: identity.device,
    image_inode: identity.inode,
    image_time_lo: time % 2 ** 32,
    image_time_hi: Math.floor(time / 2 ** 32),
    image_reserved: new Uint8Array(28),
    offset_super: offsetSuper,
    offset_inode: offsetInode,
    offset_inodemap: offsetInodemap,
    offset_blockmap: offsetBlockmap,
    offset_reserved: new Uint8Array(32),
  };
  const headerBlock = Buffer.alloc(blockSize);
  imageHeaderStruct.encode(header, headerBlock);
  await write(0, headerBlock);
  if (target.size < imageSize) await target.writeZeroes(target.size, imageSize - target.size);
  return { imageSize, bytesWritten, header };
}

export interface NormalImageFileOptions extends NormalImageOptions {
  /** Replace an existing output file (atomically). Default true, like e2image. */
  overwrite?: boolean | undefined;
  /** fsync the image before it is renamed into place. Default true. */
  sync?: boolean | undefined;
}

/** e2image with no -r/-Q to a new file (atomic: `<path>.partial`, then renamed). */
export async function writeNormalImageFile(
  fs: Filesystem,
  path: string,
  options: NormalImageFileOptions = {},
): Promise<NormalImageResult> {
  const output = await createOutputFile(path, {
    overwrite: options.overwrite ?? true,
    sync: options.sync ?? true,
  });
  try {
    const result = await writeNormalImage(fs, output.device, options);
    await output.commit();
    return result;
  } catch (error) {
    await output.abort();
    throw error;
  }
}

function paddedLength(length: number, blockSize: number): number {
  return Math.ceil(length / blockSize) * blockSize;
}

function padToBlock(bytes: Buffer, blockSize: number): Buffer {
  const padded = paddedLength(bytes.length, blockSize);
  return padded === bytes.length
    ? bytes
    : Buffer.concat([bytes, Buffer.alloc(padded - bytes.length)]);
}

function truncate(text: string, bytes: number): string {
  const encoded = Buffer.from(text, 'latin1');
  return encoded.length <= bytes ? text : encoded.subarray(0, bytes).toString('latin1');
}

/** st_rdev of the source (0 for regular files), as e2image records it. */
async function deviceNumber(path: string): Promise<number> {
  try {
    return (await stat(path)).rdev >>> 0;
  } catch {
    return 0;
  }
}

/** st_dev and st_ino of the image file (they survive the final rename). */
async function fileIdentity(target: BlockDevice): Promise<{ device: number; inode: number }> {
  if (target instanceof FileDevice) {
    const info = await target.handle.stat();
    return { device: info.dev >>> 0, inode: info.ino >>> 0 };
  }
  return { device: 0, inode: 0 };
}

/** A normal image opened for reading: its header and where the pieces are. */
export interface NormalImage {
  readonly device: BlockDevice;
  readonly header: ImageHeader;
  readonly blockSize: number;
}

/** Reads and checks a normal image's header (ext2fs_open2 with EXT2_FLAG_IMAGE_FILE). */
export async function openNormalImage(device: BlockDevice): Promise<NormalImage> {
  const bytes = await readExact(device, 0, imageHeaderStruct.size, 'e2image header');
  const header = imageHeaderStruct.decode(bytes);
  const bad = (what: string) =>
    new E2imageError('BAD_IMAGE', `not an e2image normal image: ${what}`, {
      path: device.name,
      structure: 'e2image header',
    });
  if (header.magic_number !== EXT2_ET_MAGIC_E2IMAGE) {
    throw bad(
      `magic 0x${header.magic_number.toString(16)}, expected 0x${EXT2_ET_MAGIC_E2IMAGE.toString(16)}`,
    );
  }
  const blockSize = header.fs_blocksize;
  if (blockSize < 1024 || blockSize > 65536 || (blockSize & (blockSize - 1)) !== 0) {
    throw bad(`fs_blocksize ${blockSize}`);
  }
  for (const [name, value] of [
    ['offset_super', header.offset_super],
    ['offset_inode', header.offset_inode],
    ['offset_blockmap', header.offset_blockmap],
    ['offset_inodemap', header.offset_inodemap],
  ] as const) {
    if (value % blockSize !== 0 || value >= device.size) {
      throw bad(`${name} ${value} is not a block inside the ${device.size}-byte image`);
    }
  }
  return { device, header, blockSize };
}
