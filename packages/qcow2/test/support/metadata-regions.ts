/**
 * Where each metadata structure of a (small, intact) QCOW2 image lives, read
 * straight from the bytes so the fuzz test can aim its corruption at one
 * structure at a time. Deliberately independent of the code under test.
 */
export interface MetadataRegion {
  structure: string;
  offset: number;
  length: number;
}

const OFFSET_MASK = 0x00fffffffffffe00n;
const u32 = (image: Buffer, at: number) => image.readUInt32BE(at);
const u64 = (image: Buffer, at: number) => Number(image.readBigUInt64BE(at));
const tableOffset = (image: Buffer, at: number) => Number(image.readBigUInt64BE(at) & OFFSET_MASK);

export function metadataRegions(image: Buffer): MetadataRegion[] {
  const version = u32(image, 4);
  const clusterSize = 2 ** u32(image, 20);
  const headerLength = version >= 3 ? u32(image, 100) : 72;
  const regions: MetadataRegion[] = [{ structure: 'header', offset: 0, length: headerLength }];

  // Header extensions: type, length, data padded to 8 bytes, up to the end marker.
  let at = headerLength;
  while (at + 8 <= clusterSize && u32(image, at) !== 0)
    at += 8 + Math.ceil(u32(image, at + 4) / 8) * 8;
  if (at > headerLength) {
    regions.push({
      structure: 'header extensions',
      offset: headerLength,
      length: at + 8 - headerLength,
    });
  }

  const tables = (structure: string, l1Offset: number, l1Size: number) => {
    regions.push({ structure, offset: l1Offset, length: 8 * l1Size });
    for (let index = 0; index < l1Size; index++) {
      const l2 = tableOffset(image, l1Offset + 8 * index);
      if (l2 !== 0)
        regions.push({ structure: `L2 table of ${structure}`, offset: l2, length: clusterSize });
    }
  };
  tables('L1 table', u64(image, 40), u32(image, 36));

  const refcountTable = u64(image, 48);
  const refcountClusters = u32(image, 56);
  regions.push({
    structure: 'refcount table',
    offset: refcountTable,
    length: refcountClusters * clusterSize,
  });
  for (let index = 0; index < (refcountClusters * clusterSize) / 8; index++) {
    const block = u64(image, refcountTable + 8 * index);
    if (block !== 0)
      regions.push({ structure: 'refcount block', offset: block, length: clusterSize });
  }

  const snapshots = u64(image, 64);
  let entry = snapshots;
  for (let index = 0; index < u32(image, 60); index++) {
    tables(`snapshot ${index} L1 table`, u64(image, entry), u32(image, entry + 8));
    const size =
      40 + u32(image, entry + 36) + image.readUInt16BE(entry + 12) + image.readUInt16BE(entry + 14);
    entry += Math.ceil(size / 8) * 8;
  }
  if (entry > snapshots)
    regions.push({ structure: 'snapshot table', offset: snapshots, length: entry - snapshots });

  // Tables shared between snapshots appear once per owner; the duplicates only weight them.
  return regions.filter(
    (region) => region.length > 0 && region.offset + region.length <= image.length,
  );
}
