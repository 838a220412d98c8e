import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { cachedFixture, sharedFixtureDirectory } from '@x/test-utils';

const run = promisify(execFile);

export const PACKAGE_ROOT = resolve(import.meta.dirname, '..', '..');
/** The real FileStore fixture (Ceph 16.2), read in place and never written. */
export const CEPH_FIXTURES = sharedFixtureDirectory('ceph', PACKAGE_ROOT);

export const CEPH_OSDS = [
  {
    osd: 0,
    kind: 'leveldb',
    tarball: 'osd0-filestore-leveldb.tar.gz',
    listing: 'omap-list-osd0.txt',
  },
  {
    osd: 1,
    kind: 'rocksdb',
    tarball: 'osd1-filestore-rocksdb.tar.gz',
    listing: 'omap-list-osd1.txt',
  },
] as const;

/**
 * The omap directory of OSD `osd`, extracted from the fixture's tarball into the
 * package's .fixtures/ cache (the tarball itself is only read).
 */
export async function cephOmapDirectory(osd: 0 | 1): Promise<string> {
  const entry = CEPH_OSDS[osd];
  const directory = await cachedFixture(
    PACKAGE_ROOT,
    `ceph-omap-osd${osd}`,
    `tar ${entry.tarball} v1`,
    async (scratch) => {
      await run('tar', [
        '-xzf',
        join(CEPH_FIXTURES, entry.tarball),
        '-C',
        scratch,
        `osd.${osd}/current/omap`,
      ]);
    },
  );
  return join(directory, `osd.${osd}`, 'current', 'omap');
}

/**
 * `ceph-kvstore-tool <backend> <dir> list` lines: "<prefix>\t<key>", both escaped by
 * Ceph's url_escape (alphanumerics and "-._~/" kept, every other byte as %xx).
 */
export async function cephListing(osd: 0 | 1): Promise<string[]> {
  const text = await readFile(join(CEPH_FIXTURES, CEPH_OSDS[osd].listing), 'utf8');
  return text.split('\n').filter((line) => line !== '');
}

export function cephUrlEscape(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~/]/.test(c)) out += c;
    else out += `%${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** A raw omap key as ceph-kvstore-tool lists it: prefix, NUL, key → "prefix\tkey". */
export function cephListLine(rawKey: Buffer): string {
  const nul = rawKey.indexOf(0);
  if (nul < 0) throw new Error(`omap key without a NUL separator: ${rawKey.toString('hex')}`);
  return `${cephUrlEscape(rawKey.subarray(0, nul))}\t${cephUrlEscape(rawKey.subarray(nul + 1))}`;
}
