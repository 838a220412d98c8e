import type { BlockDevice } from '@x/blockio';
import { QCOW2_AUTOCLEAR_BITMAPS } from '../format/constants.js';
import { entryOffset } from '../format/table-entries.js';
import type { HeaderFacts } from './header-facts.js';
import { clampOffset } from './header-facts.js';
import type { FindingCollector } from './report.js';

/** QEMU's limits (block/qcow2.h): 64 MiB directory, 1 MiB × 8 bitmap table entries. */
const QCOW2_MAX_BITMAP_DIRECTORY_SIZE = 1024 * 65535;
const BME_MAX_TABLE_SIZE = 0x8000000;
const DIRECTORY_ENTRY_SIZE = 24;

/** BME_MAX_GRANULARITY_BITS, BME_MIN_GRANULARITY_BITS, BME_MAX_NAME_SIZE, BME_RESERVED_FLAGS (qcow2-bitmap.c). */
const BME_MAX_GRANULARITY_BITS = 31;
const BME_MIN_GRANULARITY_BITS = 9;
const BME_MAX_NAME_SIZE = 1023;
const BME_RESERVED_FLAGS = 0xfffffffc;
/** Bitmap type 1: dirty tracking, the only one defined. */
const BT_DIRTY_TRACKING_BITMAP = 1;

function directoryEntryFaults(
  tableOffset: number,
  tableSize: number,
  flags: number,
  type: number,
  granularityBits: number,
  nameSize: number,
  extraSize: number,
): string[] {
  const faults: string[] = [];
  if (extraSize !== 0) {
    faults.push(
      `extra_data_size is ${extraSize}; no extra data is defined (qemu-img: "Bitmap extra data is not supported")`,
    );
  }
  if (tableSize === 0 || tableOffset === 0) faults.push('has no bitmap table');
  if (granularityBits < BME_MIN_GRANULARITY_BITS || granularityBits > BME_MAX_GRANULARITY_BITS) {
    faults.push(`granularity_bits ${granularityBits} is outside 9..31`);
  }
  if ((flags & BME_RESERVED_FLAGS) >>> 0 !== 0) {
    faults.push(`reserved flags are set (0x${(flags >>> 0).toString(16)})`);
  }
  if (nameSize > BME_MAX_NAME_SIZE) faults.push(`name_size ${nameSize} is above 1023`);
  if (type !== BT_DIRTY_TRACKING_BITMAP) faults.push(`type ${type} is not 1 (dirty tracking)`);
  return faults;
}

/** A range the persistent bitmaps occupy, for the tally and the metadata map. */
export interface BitmapRegion {
  kind: 'bitmap directory' | 'bitmap table' | 'bitmap data';
  offset: number;
  length: number;
  /** Which bitmap (directory index), -1 for the directory. */
  bitmap: number;
}

/**
 * Lists every cluster the persistent dirty bitmaps use (directory, tables,
 * data), as qemu-img counts them — only when the autoclear "bitmaps" bit says
 * the extension is current. Calls `visit` per region; damage is a finding.
 */
export async function forEachBitmapRegion(
  file: BlockDevice,
  facts: HeaderFacts,
  findings: FindingCollector,
  visit: (region: BitmapRegion) => void,
): Promise<void> {
  const extension = facts.extensions.bitmaps;
  if (extension === undefined) return;
  if ((facts.header.autoclearFeatures & QCOW2_AUTOCLEAR_BITMAPS) === 0n) return;
  const { clusterSize } = facts;
  const problem = (message: string, offset: number) =>
    findings.add({ kind: 'bitmaps', message, structure: 'bitmap directory', hostOffset: offset });
  const directoryOffset = clampOffset(extension.bitmapDirectoryOffset);
  const directorySize = Number(
    extension.bitmapDirectorySize > BigInt(QCOW2_MAX_BITMAP_DIRECTORY_SIZE)
      ? QCOW2_MAX_BITMAP_DIRECTORY_SIZE + 1
      : extension.bitmapDirectorySize,
  );
  if (directorySize > QCOW2_MAX_BITMAP_DIRECTORY_SIZE) {
    problem('bitmap directory is larger than QEMU allows', directoryOffset);
    return;
  }
  if (directoryOffset % clusterSize !== 0 || directoryOffset + directorySize > facts.fileSize) {
    problem(
      `bitmap directory at 0x${directoryOffset.toString(16)} (${directorySize} bytes) is unaligned or past the end of the file`,
      directoryOffset,
    );
    return;
  }
  visit({ kind: 'bitmap directory', offset: directoryOffset, length: directorySize, bitmap: -1 });
  const directory = await file.read(directoryOffset, directorySize);
  let at = 0;
  for (let index = 0; index < extension.nbBitmaps; index++) {
    if (at + DIRECTORY_ENTRY_SIZE > directorySize) {
      problem(`bitmap directory ends inside entry ${index}`, directoryOffset + at);
      return;
    }
    const entryAt = directoryOffset + at;
    const tableOffset = clampOffset(directory.readBigUInt64BE(at));
    const tableSize = directory.readUInt32BE(at + 8);
    const flags = directory.readUInt32BE(at + 12);
    const type = directory.readUInt8(at + 16);
    const granularityBits = directory.readUInt8(at + 17);
    const nameSize = directory.readUInt16BE(at + 18);
    const extraSize = directory.readUInt32BE(at + 20);
    at += Math.ceil((DIRECTORY_ENTRY_SIZE + extraSize + nameSize) / 8) * 8;
    if (at > directorySize) {
      problem(
        `bitmap ${index}: its extra data (${extraSize} bytes) and name (${nameSize} bytes) run past the end of the ${directorySize}-byte directory (qemu-img: "Broken bitmap directory")`,
        entryAt,
      );
      return;
    }
    // What QEMU's bitmap_list_load and check_dir_entry refuse (it then refuses to
    // open the image at all): reported, and the entry's clusters still counted.
    for (const fault of directoryEntryFaults(
      tableOffset,
      tableSize,
      flags,
      type,
      granularityBits,
      nameSize,
      extraSize,
    )) {
      problem(`bitmap ${index}: ${fault}`, entryAt);
    }
    if (tableSize > BME_MAX_TABLE_SIZE) {
      problem(`bitmap ${index} table of ${tableSize} entries is too large`, directoryOffset);
      continue;
    }
    const tableBytes = tableSize * 8;
    if (tableOffset % clusterSize !== 0 || tableOffset + tableBytes > facts.fileSize) {
      problem(
        `bitmap ${index} table at 0x${tableOffset.toString(16)} is unaligned or past the end of the file`,
        tableOffset,
      );
      continue;
    }
    if (tableBytes === 0) continue;
    visit({ kind: 'bitmap table', offset: tableOffset, length: tableBytes, bitmap: index });
    const table = await file.read(tableOffset, tableBytes);
    for (let entry = 0; entry < tableSize; entry++) {
      const hi = table.readUInt32BE(entry * 8);
      const lo = table.readUInt32BE(entry * 8 + 4);
      const offset = entryOffset(hi, lo);
      if (offset === 0) continue;
      if (offset % clusterSize !== 0 || offset >= facts.fileSize) {
        problem(
          `bitmap ${index} table entry ${entry} points at 0x${offset.toString(16)}, unaligned or past the end of the file`,
          tableOffset + entry * 8,
        );
        continue;
      }
      visit({ kind: 'bitmap data', offset, length: clusterSize, bitmap: index });
    }
  }
}
