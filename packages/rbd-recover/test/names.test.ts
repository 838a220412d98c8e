import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  escapeObjectFileName,
  isLongFileName,
  longFileName,
  type ObjectName,
  objectFileName,
  omapObjectKey,
  parseHostsFile,
  parseObjectFileName,
  parseOmapObjectKey,
  parseXattrDump,
  RbdRecoverError,
} from '../src/index.js';

const base: ObjectName = { name: '', key: '', namespace: '', snap: 'head', hash: 0, pool: 1 };

describe('FileStore file names', () => {
  it.each([
    [
      'rbd\\udata.102e52f45f67.0000000000000001__head_1B990741__1',
      { name: 'rbd_data.102e52f45f67.0000000000000001', hash: 0x1b990741 },
    ],
    [
      'rbd\\udata.102e52f45f67.0000000000000001__4_1B990741__1',
      { name: 'rbd_data.102e52f45f67.0000000000000001', snap: 4n, hash: 0x1b990741 },
    ],
    ['img\\uv1.rbd__head_0627ED13__1', { name: 'img_v1.rbd', hash: 0x0627ed13 }],
    ['__head_00000002__1', { name: '', hash: 2 }],
    [
      'osd\\usuperblock__0_23C2FCDE__none',
      { name: 'osd_superblock', snap: 0n, hash: 0x23c2fcde, pool: -1 },
    ],
    [
      'rbd\\udata.x.0000000000000001__head_1B990741_ns1_1',
      { name: 'rbd_data.x.0000000000000001', namespace: 'ns1', hash: 0x1b990741 },
    ],
    ['\\dfoo__head_00000001__1f', { name: 'DIR_foo', hash: 1, pool: 0x1f }],
    ['\\.hidden__snapdir_00000001__1', { name: '.hidden', snap: 'snapdir', hash: 1 }],
    ['a\\\\b\\sc\\nd__head_00000001__1', { name: 'a\\b/c\0d', hash: 1 }],
  ] as const)('parses %s', (fileName, expected) => {
    expect(parseObjectFileName(fileName)).toEqual({ ...base, ...expected });
  });

  it('round-trips every escape (property)', () => {
    const text = fc.string({
      unit: fc.constantFrom('a', '_', '.', '/', '\\', '\0', '%', ' ', 'é', 'D', 'I', 'R', '#', ':'),
    });
    fc.assert(
      fc.property(
        text,
        text,
        text,
        fc.nat(0xffffffff),
        fc.nat(1000),
        (name, key, namespace, hash, pool) => {
          const object: ObjectName = { name, key, namespace, snap: 'head', hash, pool };
          expect(parseObjectFileName(escapeObjectFileName(object))).toEqual(object);
          expect(parseOmapObjectKey(omapObjectKey(object))).toEqual(object);
        },
      ),
      { seed: 20261207, numRuns: 300 },
    );
  });

  it('refuses what is not an object file name, with BAD_NAME', () => {
    for (const bad of [
      'commit_op_seq',
      'a__head_XYZ__1',
      'a\\q__head_00000001__1',
      'a__head_00000001__1_2',
    ]) {
      expect(() => parseObjectFileName(bad)).toThrow(RbdRecoverError);
    }
  });

  it('long names: 227 bytes of the escaped name, the SHA-1 prefix, the index', () => {
    const object: ObjectName = { ...base, name: `rbd_id.${'x'.repeat(300)}`, hash: 0xabcdef01 };
    const fileName = objectFileName(object);
    expect(fileName).toHaveLength(255);
    expect(isLongFileName(fileName)).toBe(true);
    expect(fileName.startsWith(escapeObjectFileName(object).slice(0, 227))).toBe(true);
    expect(fileName.endsWith('_0_long')).toBe(true);
    expect(longFileName(Buffer.from(escapeObjectFileName(object)), 12)).toHaveLength(255);
  });

  it('omap object keys as the fixture lists them', () => {
    const key = 'rbd%uheader%e102e52f45f67...head.1.E7B33954';
    expect(parseOmapObjectKey(key)).toEqual({
      ...base,
      name: 'rbd_header.102e52f45f67',
      hash: 0xe7b33954,
    });
    expect(omapObjectKey({ ...base, name: 'rbd_header.102e52f45f67', hash: 0xe7b33954 })).toBe(key);
  });
});

describe('getfattr output', () => {
  it('unquotes octal escapes in paths and decodes hex values', () => {
    const dump = parseXattrDump(
      '# file: osd.0/current/1.1_head/rbd\\134udata.x__head_1B990741__1\nuser.ceph.snapset=0x0302\nuser.cephos.spill_out=0x3000\n\n',
      'test',
    );
    const file = dump.get('osd.0/current/1.1_head/rbd\\udata.x__head_1B990741__1');
    expect(file?.get('user.ceph.snapset')).toEqual(Buffer.from([3, 2]));
  });
});

describe('hosts file', () => {
  it('reads hosts, several OSDs per host, comments and user@host:port', () => {
    const osds = parseHostsFile(
      '# comment\nosdhost0 /var/lib/ceph/osd/ceph-0\nosdhost0\t/var/lib/ceph/osd/ceph-1  # second\n\nroot@10.0.0.5:2222 /srv/osd.2\nlocal /mnt/osd.3\n',
    );
    expect(osds).toEqual([
      {
        host: 'osdhost0',
        ssh: { hostname: 'osdhost0', port: 22, username: undefined },
        dataPath: '/var/lib/ceph/osd/ceph-0',
      },
      {
        host: 'osdhost0',
        ssh: { hostname: 'osdhost0', port: 22, username: undefined },
        dataPath: '/var/lib/ceph/osd/ceph-1',
      },
      {
        host: 'root@10.0.0.5:2222',
        ssh: { hostname: '10.0.0.5', port: 2222, username: 'root' },
        dataPath: '/srv/osd.2',
      },
      { host: 'local', ssh: undefined, dataPath: '/mnt/osd.3' },
    ]);
  });

  it('refuses a line without a path, with the line number', () => {
    expect(() => parseHostsFile('osdhost0\n')).toThrow(/line 1/);
  });
});
