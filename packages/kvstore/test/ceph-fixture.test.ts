import { chmod, cp } from 'node:fs/promises';
import { makeTempDir } from '@x/test-utils';
import { describe, expect, it } from 'vitest';
import { openKvStore } from '../src/index.js';
import { CEPH_OSDS, cephListing, cephListLine, cephOmapDirectory } from './support/ceph-fixture.js';
import { snapshotTree } from './support/tree-snapshot.js';

const raw = (prefix: string, key: string) => Buffer.from(`${prefix}\0${key}`, 'latin1');

describe('the real Ceph 16.2 FileStore omap stores', () => {
  it.each(CEPH_OSDS.map((entry) => [entry.osd, entry] as const))(
    'osd.%i: every key ceph-kvstore-tool lists, in its order, and the right backend',
    async (osd, entry) => {
      const directory = await cephOmapDirectory(osd);
      const store = await openKvStore(directory);
      try {
        expect(store.kind).toBe(entry.kind);
        const lines: string[] = [];
        for await (const { key } of store.entries()) lines.push(cephListLine(key));
        expect(lines).toEqual(await cephListing(osd));
        expect(store.warnings).toEqual([]);
      } finally {
        await store.close();
      }
    },
  );

  it.each([0, 1] as const)(
    'osd.%i: the v2 image header reads through _HOBJTOSEQ_ and _USER_ keys',
    async (osd) => {
      const store = await openKvStore(await cephOmapDirectory(osd));
      try {
        const header = await store.get(
          raw('_HOBJTOSEQ_', 'rbd%uheader%e102e52f45f67...head.1.E7B33954'),
        );
        expect(header).toBeDefined();
        // DBObjectMap header: u8 v, u8 compat, u32 len, then the u64 seq.
        const seq = (header as Buffer).readBigUInt64LE(6);
        const user = `_USER_${seq.toString().padStart(16, '0')}_USER_`;
        expect((await store.get(raw(user, 'size')))?.readBigUInt64LE(0)).toBe(48n << 20n);
        expect((await store.get(raw(user, 'order')))?.[0]).toBe(22);
        const prefix = (await store.get(raw(user, 'object_prefix'))) as Buffer;
        expect(prefix.subarray(4).toString('latin1')).toBe('rbd_data.102e52f45f67');
        expect(await store.get(raw(user, 'no-such-key'))).toBeUndefined();
        const snapshots: string[] = [];
        for await (const { key } of store.entries({ prefix: raw(user, 'snapshot_') })) {
          snapshots.push(key.subarray(user.length + 1).toString('latin1'));
        }
        expect(snapshots).toEqual(['snapshot_0000000000000004', 'snapshot_0000000000000005']);
      } finally {
        await store.close();
      }
    },
  );

  it('opening and reading a store in a read-only directory changes nothing', async () => {
    const temp = await makeTempDir('kvstore-readonly-');
    try {
      for (const osd of [0, 1] as const) {
        const copy = temp.file(`osd${osd}`);
        await cp(await cephOmapDirectory(osd), copy, { recursive: true });
        await chmod(copy, 0o555);
        const before = await snapshotTree(copy);
        const store = await openKvStore(copy);
        let count = 0;
        for await (const _ of store.entries()) count++;
        await store.close();
        expect(count).toBe((await cephListing(osd)).length);
        expect(await snapshotTree(copy)).toEqual(before);
        await chmod(copy, 0o755);
      }
    } finally {
      await temp.remove();
    }
  });
});
