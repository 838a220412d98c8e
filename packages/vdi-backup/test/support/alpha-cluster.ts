import { readFileSync } from 'node:fs';
import { FakeSheep } from '@x/test-utils';
import { OBJECT_SIZE, type SheepdogFixtures } from './sheepdog-fixtures.js';

export const VID = { snap0: 0xed202b, snap1: 0xed202c, snap2: 0xed202d, working: 0xed202e };

/** The fixture's data pattern (formats/sheepdog.md §6) for [offset, offset + length). */
export function pattern(tag: string, offset: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let at = 0; at < length; ) {
    const absolute = offset + at;
    const sector = absolute - (absolute % 512);
    const text = `${tag} sector@${sector.toString(16).padStart(12, '0')} `;
    const sectorBytes = Buffer.alloc(512, text);
    const from = absolute - sector;
    const take = Math.min(512 - from, length - at);
    sectorBytes.copy(out, at, from, from + take);
    at += take;
  }
  return out;
}

/**
 * VDI `alpha` as the fixtures were made: snapshots snap0..snap2 from the captured inode
 * heads, their objects from the raw images, and a working VDI (ed202e) on snap2 — with
 * the extra v3 write at object 2 unless `cleanWorking`.
 */
export function alphaCluster(fixtures: SheepdogFixtures, options: { cleanWorking?: boolean } = {}) {
  const sheep = new FakeSheep();
  const images: Record<string, Buffer> = {};
  for (const [snapshot, vid] of [
    ['snap0', VID.snap0],
    ['snap1', VID.snap1],
    ['snap2', VID.snap2],
  ] as const) {
    sheep.inodes.set(vid, Buffer.from(fixtures.inode(vid.toString(16))));
    const image = readFileSync(fixtures.raw(snapshot));
    images[snapshot] = image;
    const slots = sheep.inode(vid)?.slots ?? [];
    slots.forEach((owner, idx) => {
      if (owner === vid) {
        sheep.addObject(vid, idx, image.subarray(idx * OBJECT_SIZE, (idx + 1) * OBJECT_SIZE));
      }
    });
  }
  const workingSlots = [...(sheep.inode(VID.snap2)?.slots ?? [])];
  if (!options.cleanWorking) {
    workingSlots[2] = VID.working;
    const object = Buffer.alloc(OBJECT_SIZE);
    pattern('v3', 2 * OBJECT_SIZE, 4096).copy(object, 0);
    sheep.addObject(VID.working, 2, object);
  }
  sheep.addVdi({
    name: 'alpha',
    vid: VID.working,
    parent: VID.snap2,
    snapId: 4,
    size: 64 << 20,
    snapshot: false,
    slots: workingSlots,
  });
  return { sheep, images };
}
