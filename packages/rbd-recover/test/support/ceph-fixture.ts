import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { cachedFixture, sharedFixtureDirectory } from '@x/test-utils';

const run = promisify(execFile);

export const PACKAGE_ROOT = resolve(import.meta.dirname, '..', '..');
/** The real Ceph 16.2 FileStore fixture (two OSDs, exports), shared read-only. */
export const CEPH_FIXTURE = sharedFixtureDirectory('ceph', PACKAGE_ROOT);

export interface ExtractedFixture {
  /** Holds osd.0/ and osd.1/ (data dirs with their xattrs) and exports/*.raw. */
  readonly directory: string;
  readonly osd0: string;
  readonly osd1: string;
  exportPath(name: string): string;
}

/** The fixture's OSD data dirs extracted with their xattrs, and the exports gunzipped. */
export async function extractedFixture(): Promise<ExtractedFixture> {
  const directory = await cachedFixture(
    PACKAGE_ROOT,
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
      for (const name of [
        'img_v2.a',
        'img_v2.a@s1',
        'img_v2.a@s2',
        'img_v1',
        'img_v1@v1s1',
        'img_v2.a.pre-degrade',
      ]) {
        await pipeline(
          createReadStream(join(CEPH_FIXTURE, 'exports', `${name}.raw.gz`)),
          createGunzip(),
          createWriteStream(join(into, 'exports', `${name}.raw`)),
        );
      }
    },
  );
  return {
    directory,
    osd0: join(directory, 'osd.0'),
    osd1: join(directory, 'osd.1'),
    exportPath: (name) => join(directory, 'exports', `${name}.raw`),
  };
}
