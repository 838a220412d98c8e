import { truncate } from 'node:fs/promises';
import { pokeBytes, pokeU32BE, pokeU64BE, readBytes, readU64BE } from '@x/test-utils';
import { l2Entry, layout, OFFSET_MASK, setL2Entry, snapshotEntryOffset } from './corrupt.js';

/**
 * Damage as QEMU's iotests make it (060, 080, 261 and friends): one poke per
 * recipe on an image from qemu-img create + qemu-io, with every offset read
 * from the image, never hardcoded. `base` names the image a recipe needs.
 */
export interface DamageRecipe {
  name: string;
  base: 'plain' | 'snapshots' | 'wide';
  poke: (path: string) => Promise<void>;
}

const COPIED = 1n << 63n;
/** An aligned offset far past the end of any test image. */
const PAST_EOF = 0x10000000n;

async function pokeSnapshotField(
  path: string,
  index: number,
  at: number,
  value: (current: bigint) => bigint,
  width: 2 | 4 | 8,
): Promise<void> {
  const entry = (await snapshotEntryOffset(path, index)) + at;
  if (width === 8) await pokeU64BE(path, entry, value(await readU64BE(path, entry)));
  else {
    const current = await readBytes(path, entry, width);
    const next = Buffer.alloc(width);
    next.writeUIntBE(Number(value(BigInt(current.readUIntBE(0, width)))), 0, width);
    await pokeBytes(path, entry, next);
  }
}

export const SNAPSHOT_TABLE_RECIPES: DamageRecipe[] = [
  {
    name: 'snapshot L1 table offset not cluster aligned',
    base: 'snapshots',
    poke: (p) => pokeSnapshotField(p, 0, 0, (v) => v + 0x200n, 8),
  },
  {
    name: 'snapshot L1 table size above the 32 MiB limit',
    base: 'snapshots',
    poke: (p) => pokeSnapshotField(p, 0, 8, () => 0x400001n, 4),
  },
  {
    name: 'snapshot L1 table size reaching past the end of the file',
    base: 'snapshots',
    poke: (p) => pokeSnapshotField(p, 0, 8, () => 0x100000n, 4),
  },
  {
    name: 'snapshot L1 table past the end of the file',
    base: 'snapshots',
    poke: (p) => pokeSnapshotField(p, 0, 0, () => PAST_EOF, 8),
  },
  {
    name: 'snapshot table offset past the end of the file',
    base: 'snapshots',
    poke: (p) => pokeU64BE(p, 64, PAST_EOF),
  },
  {
    name: 'snapshot table offset not cluster aligned',
    base: 'snapshots',
    poke: async (p) => pokeU64BE(p, 64, (await readU64BE(p, 64)) + 8n),
  },
  {
    name: 'nb_snapshots above the 65536 limit',
    base: 'snapshots',
    poke: (p) => pokeU32BE(p, 60, 65537),
  },
  {
    name: 'nb_snapshots one more than the table holds',
    base: 'snapshots',
    poke: async (p) => pokeU32BE(p, 60, (await layout(p)).nbSnapshots + 1),
  },
  {
    name: 'snapshot table truncated by the end of the file',
    base: 'snapshots',
    poke: async (p) => truncate(p, (await snapshotEntryOffset(p, 1)) + 20),
  },
  {
    name: "snapshot table cut inside an entry's L1 offset",
    base: 'snapshots',
    poke: async (p) => truncate(p, (await snapshotEntryOffset(p, 1)) + 4),
  },
  {
    name: 'snapshot with an empty id',
    base: 'snapshots',
    poke: (p) => pokeSnapshotField(p, 1, 12, () => 0n, 2),
  },
  {
    name: 'snapshot extra data size past the table',
    base: 'snapshots',
    poke: (p) => pokeSnapshotField(p, 0, 36, () => 0x10000n, 4),
  },
  {
    name: 'duplicate snapshot ids',
    base: 'snapshots',
    poke: async (p) => {
      // Entry 1's id "2" becomes "1".
      const second = await snapshotEntryOffset(p, 1);
      const head = await readBytes(p, second, 40);
      await pokeBytes(p, second + 40 + head.readUInt32BE(36), Buffer.from('1'));
    },
  },
];

export const OVERLAP_RECIPES: DamageRecipe[] = [
  {
    name: 'L2 table overlapping the refcount block',
    base: 'plain',
    poke: async (p) => {
      const { l1Offset, refcountTableOffset } = await layout(p);
      const block = (await readU64BE(p, refcountTableOffset)) & OFFSET_MASK;
      await pokeU64BE(p, l1Offset, COPIED | block);
    },
  },
  {
    name: 'L1 table overlapping the header',
    base: 'plain',
    poke: (p) => pokeU64BE(p, 40, 0n),
  },
  {
    name: 'refcount table overlapping the L1 table',
    base: 'plain',
    poke: async (p) => pokeU64BE(p, 48, BigInt((await layout(p)).l1Offset)),
  },
  {
    name: 'refcount table overlapping the header',
    base: 'plain',
    poke: (p) => pokeU64BE(p, 48, 0n),
  },
  {
    name: 'data cluster mapped by two L2 entries',
    base: 'plain',
    poke: async (p) => setL2Entry(p, 7, await l2Entry(p, 6)),
  },
  {
    name: 'data cluster on the L2 table',
    base: 'plain',
    poke: async (p) => {
      const { l1Offset } = await layout(p);
      await setL2Entry(p, 7, COPIED | ((await readU64BE(p, l1Offset)) & OFFSET_MASK));
    },
  },
  {
    name: 'L2 table shared by two L1 entries',
    base: 'wide',
    poke: async (p) => {
      const { l1Offset } = await layout(p);
      await pokeU64BE(p, l1Offset + 8, await readU64BE(p, l1Offset));
    },
  },
];

export const REFCOUNT_RECIPES: DamageRecipe[] = [
  {
    name: 'refcount block offset 0',
    base: 'plain',
    poke: async (p) => pokeU64BE(p, (await layout(p)).refcountTableOffset, 0n),
  },
  {
    name: 'refcount block not cluster aligned',
    base: 'plain',
    poke: async (p) => {
      const { refcountTableOffset } = await layout(p);
      await pokeU64BE(p, refcountTableOffset, (await readU64BE(p, refcountTableOffset)) + 0x200n);
    },
  },
  {
    name: 'refcount block past the end of the file',
    base: 'plain',
    poke: async (p) => pokeU64BE(p, (await layout(p)).refcountTableOffset, PAST_EOF),
  },
  {
    name: 'unused refcount table entry past the end of the file',
    base: 'plain',
    poke: async (p) => pokeU64BE(p, (await layout(p)).refcountTableOffset + 8, PAST_EOF),
  },
  {
    name: 'refcount table reaching past the end of the file',
    base: 'plain',
    poke: (p) => pokeU32BE(p, 56, 100),
  },
  {
    name: 'refcount table offset past the end of the file',
    base: 'plain',
    poke: (p) => pokeU64BE(p, 48, PAST_EOF),
  },
  {
    name: 'refcount block on the L1 table',
    base: 'plain',
    poke: async (p) => {
      const { l1Offset, refcountTableOffset } = await layout(p);
      await pokeU64BE(p, refcountTableOffset, BigInt(l1Offset));
    },
  },
];
