import { appendFile, stat } from 'node:fs/promises';
import { pokeBytes, pokeU64BE, readBytes, readU32BE, readU64BE } from '@x/test-utils';

/**
 * A tiny QCOW2 corrupter for tests (the TypeScript sibling of the reference
 * notes' q2poke.py): reads table offsets from the header, never hardcodes them.
 */
export const OFFSET_MASK = 0x00fffffffffffe00n;

export interface Layout {
  clusterBits: number;
  clusterSize: number;
  version: number;
  refcountOrder: number;
  l1Offset: number;
  l1Size: number;
  refcountTableOffset: number;
  snapshotsOffset: number;
  nbSnapshots: number;
}

export async function layout(path: string): Promise<Layout> {
  const clusterBits = await readU32BE(path, 20);
  const version = await readU32BE(path, 4);
  return {
    clusterBits,
    clusterSize: 2 ** clusterBits,
    version,
    refcountOrder: version >= 3 ? await readU32BE(path, 96) : 4,
    l1Offset: Number(await readU64BE(path, 40)),
    l1Size: await readU32BE(path, 36),
    refcountTableOffset: Number(await readU64BE(path, 48)),
    snapshotsOffset: Number(await readU64BE(path, 64)),
    nbSnapshots: await readU32BE(path, 60),
  };
}

/** Byte offset of entry `index` of the L2 table that active L1 entry `l1Index` points at. */
export async function l2EntryOffset(path: string, index: number, l1Index = 0): Promise<number> {
  const { l1Offset } = await layout(path);
  const l2 = Number((await readU64BE(path, l1Offset + 8 * l1Index)) & OFFSET_MASK);
  if (l2 === 0) throw new Error(`L1 entry ${l1Index} is empty`);
  return l2 + 8 * index;
}

export async function l2Entry(path: string, index: number, l1Index = 0): Promise<bigint> {
  return readU64BE(path, await l2EntryOffset(path, index, l1Index));
}

export async function setL2Entry(
  path: string,
  index: number,
  value: bigint,
  l1Index = 0,
): Promise<void> {
  await pokeU64BE(path, await l2EntryOffset(path, index, l1Index), value);
}

/** Host cluster index the given L2 entry points at. */
export async function dataCluster(path: string, index: number, l1Index = 0): Promise<number> {
  const { clusterSize } = await layout(path);
  return Number((await l2Entry(path, index, l1Index)) & OFFSET_MASK) / clusterSize;
}

/** Byte offset of the stored refcount of `cluster` (refcounts 8 to 64 bits wide). */
export async function refcountEntryOffset(path: string, cluster: number): Promise<number> {
  const { clusterSize, refcountOrder, refcountTableOffset } = await layout(path);
  if (refcountOrder < 3) throw new Error('corrupter handles whole-byte refcounts only');
  const width = 2 ** (refcountOrder - 3);
  const perBlock = clusterSize / width;
  const block = Number(
    (await readU64BE(path, refcountTableOffset + 8 * Math.floor(cluster / perBlock))) &
      0xfffffffffffffe00n,
  );
  return block + width * (cluster % perBlock);
}

/** Sets a 16-bit refcount. */
export async function setRefcount(path: string, cluster: number, value: number): Promise<void> {
  if ((await layout(path)).refcountOrder !== 4)
    throw new Error('setRefcount is for 16-bit refcounts');
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16BE(value);
  await pokeBytes(path, await refcountEntryOffset(path, cluster), bytes);
}

export async function getRefcount(path: string, cluster: number): Promise<number> {
  if ((await layout(path)).refcountOrder !== 4)
    throw new Error('getRefcount is for 16-bit refcounts');
  return (await readBytes(path, await refcountEntryOffset(path, cluster), 2)).readUInt16BE(0);
}

/** Sets a 64-bit refcount (refcount_bits=64), all 64 bits. */
export async function setRefcount64(path: string, cluster: number, value: bigint): Promise<void> {
  if ((await layout(path)).refcountOrder !== 6)
    throw new Error('setRefcount64 is for 64-bit refcounts');
  await pokeU64BE(path, await refcountEntryOffset(path, cluster), value);
}

export async function getRefcount64(path: string, cluster: number): Promise<bigint> {
  if ((await layout(path)).refcountOrder !== 6)
    throw new Error('getRefcount64 is for 64-bit refcounts');
  return readU64BE(path, await refcountEntryOffset(path, cluster));
}

/** Appends one cluster and gives it refcount 1: a leak. Returns the cluster index. */
export async function appendLeakedCluster(path: string): Promise<number> {
  const { clusterSize } = await layout(path);
  const end = (await stat(path)).size;
  const cluster = Math.ceil(end / clusterSize);
  await appendFile(path, Buffer.alloc(cluster * clusterSize + clusterSize - end));
  await setRefcount(path, cluster, 1);
  return cluster;
}

export async function setIncompatibleBit(path: string, bit: number): Promise<void> {
  await pokeU64BE(path, 72, (await readU64BE(path, 72)) | (1n << BigInt(bit)));
}

/** Offset of snapshot entry `index` (walks the table). */
export async function snapshotEntryOffset(path: string, index: number): Promise<number> {
  const { snapshotsOffset } = await layout(path);
  let at = snapshotsOffset;
  for (let i = 0; i < index; i++) {
    const head = await readBytes(path, at, 40);
    const size = 40 + head.readUInt32BE(36) + head.readUInt16BE(12) + head.readUInt16BE(14);
    at += Math.ceil(size / 8) * 8;
  }
  return at;
}
