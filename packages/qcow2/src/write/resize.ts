import { BlockIoError } from '@x/blockio';
import { Qcow2Error } from '../errors.js';
import type { Preallocation } from '../image/write-path.js';
import { HEADER_SIZE_OFFSET, writeHeaderField } from './header-writer.js';
import { growL1Table } from './l2-tables.js';
import { preallocateMetadata } from './preallocate.js';
import type { WriterState } from './writer-state.js';

/**
 * Grows the virtual disk to `newSize` bytes (QEMU's qcow2_co_truncate() for
 * growth): the L1 table grows to exactly what the new size needs, new clusters
 * are preallocated when asked (always with a raw external data file, which must
 * stay readable on its own), an external data file grows with the disk, and the
 * header's size field is updated last.
 */
export async function growImage(
  writer: WriterState,
  newSize: number,
  preallocation: Preallocation,
): Promise<void> {
  const oldSize = writer.image.size;
  const where = { path: writer.file.name, structure: 'resize' };
  if (newSize % 512 !== 0) {
    throw new BlockIoError(
      'INVALID_ARGUMENT',
      `the new size ${newSize} is not a multiple of 512`,
      where,
    );
  }
  if (newSize < oldSize) {
    throw new Qcow2Error('UNSUPPORTED', 'shrinking a qcow2 image is not supported', where);
  }
  await growL1Table(writer, writer.geometry.l1EntriesFor(newSize), true);
  let mode = preallocation;
  if (writer.dataFileRaw && mode === 'off') mode = 'metadata';
  if (mode === 'metadata') {
    await preallocateMetadata(writer, oldSize, newSize);
  } else if (writer.hasDataFile) {
    await writer.setDataFileSize(newSize);
  }
  writer.image.setVirtualSize(newSize);
  writer.state.header.size = BigInt(newSize);
  await writeHeaderField(writer.file, HEADER_SIZE_OFFSET, 8, newSize);
}
