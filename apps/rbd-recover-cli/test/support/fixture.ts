import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { cachedFixture, sharedFixtureDirectory } from '@x/test-utils';

const run = promisify(execFile);
const APP_ROOT = resolve(import.meta.dirname, '..', '..');
const CEPH_FIXTURE = sharedFixtureDirectory('ceph', APP_ROOT);

/** The real FileStore fixture's two OSD data dirs (with xattrs) and its exports. */
export async function cephFixture(): Promise<{
  osd0: string;
  osd1: string;
  exportPath(name: string): string;
}> {
  const directory = await cachedFixture(
    APP_ROOT,
    'ceph-filestore',
    `v1 ${CEPH_FIXTURE}`,
    async (into) => {
      for (const archive of ['osd0-filestore-leveldb.tar.gz', 'osd1-filestore-rocksdb.tar.gz']) {
        await run('tar', [
          '--xattrs',
          '--xattrs-include=user.*',
          '-xzf',
          join(CEPH_FIXTURE, archive),
          '-C',
          into,
        ]);
      }
      await mkdir(join(into, 'exports'));
      for (const name of ['img_v2.a', 'img_v2.a@s1', 'img_v2.a@s2', 'img_v1', 'img_v1@v1s1']) {
        await pipeline(
          createReadStream(join(CEPH_FIXTURE, 'exports', `${name}.raw.gz`)),
          createGunzip(),
          createWriteStream(join(into, 'exports', `${name}.raw`)),
        );
      }
    },
  );
  return {
    osd0: join(directory, 'osd.0'),
    osd1: join(directory, 'osd.1'),
    exportPath: (name) => join(directory, 'exports', `${name}.raw`),
  };
}
