// @x/vdi-backup benchmarks (issue 20, performance). Protocol and method:
// tools/bench/README.md. Whole processes: ours is the `vdi-backup` bin.
//
// Input (made once, cached in .fixtures/): a.raw, a 4 GiB raw disk full of random data
// (AES-CTR keystream), and b.raw, the same disk with 5% of its 4 MiB objects rewritten
// (every 20th object, from a random start: scattered); a QCOW2 image (64 KiB clusters,
// written by @x/qcow2) holding a.raw's data as snapshot s1 and b.raw's as snapshot s2, so
// the two snapshots share 95% of their clusters; the raw a → b stream for the restore.
// --quick: 512 MiB disks.
//
// Cases (all with --no-sync: the peers write nothing or do not fsync):
// - create-raw: `vdi-backup create -F a.raw -s b.raw` against `cat a.raw b.raw > /dev/null`
//   (reading both disks whole is the floor for a diff of fully allocated raw images).
//   Target: ratio <= 1.25, peak RSS <= 128 MiB. Three rows for information show what is
//   reachable: bench/bare-loop.mjs reading and comparing both disks and nothing else, on
//   one thread in 64 KiB pieces, on the thread pool in 1 MiB pieces, and on a worker
//   thread per core in 128 KiB pieces (create's own method for two files).
// - create-qcow2: `vdi-backup create -F s1 -s s2 disk.qcow2` against our own create-raw on
//   the same data: shared clusters are never read, changed ones are read from the image
//   file at their host offsets ("from" only up to an object's first and back from its
//   last difference); the case name reports the bytes read. Target: ratio <= 0.3.
// - restore-raw: `vdi-backup restore -s a.raw out.raw -i a-to-b.backup` against
//   `cp --sparse=always a.raw out.raw`. Target: ratio <= 1.25.
import { execFileSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCases } from '@x/bench';
import { createQcow2, openQcow2 } from '@x/qcow2';
import { cachedFixture } from '@x/test-utils';

const here = dirname(fileURLToPath(import.meta.url));
const packageRoot = join(here, '..');
const bin = join(packageRoot, '..', '..', 'apps', 'vdi-backup-cli', 'bin', 'vdi-backup.js');
const MiB = 2 ** 20;
const OBJECT = 4 * MiB;

async function inputs(quick) {
  const size = quick ? 512 * MiB : 4096 * MiB;
  const objects = size / OBJECT;
  const changed = [];
  for (let idx = 7 % 20; idx < objects; idx += 20) changed.push(idx);
  const directory = await cachedFixture(
    packageRoot,
    `bench-${size / MiB}m`,
    `aes-ctr a, b = a with objects ${changed.length} every 20th from 7; qcow2 s1/s2 v1`,
    async (dir) => {
      const keystream = createCipheriv('aes-128-ctr', Buffer.alloc(16, 1), Buffer.alloc(16, 2));
      const changes = createCipheriv('aes-128-ctr', Buffer.alloc(16, 3), Buffer.alloc(16, 4));
      const a = openSync(join(dir, 'a.raw'), 'w');
      const b = openSync(join(dir, 'b.raw'), 'w');
      const image = join(dir, 'disk.qcow2');
      await createQcow2(image, { size });
      const qcow2 = await openQcow2(image, { writable: true });
      const newData = new Map();
      for (let idx = 0; idx < objects; idx++) {
        const data = keystream.update(Buffer.alloc(OBJECT));
        writeSync(a, data, 0, OBJECT, idx * OBJECT);
        await qcow2.write(idx * OBJECT, data);
        const next = changed.includes(idx) ? changes.update(Buffer.alloc(OBJECT)) : data;
        if (next !== data) newData.set(idx, next);
        writeSync(b, next, 0, OBJECT, idx * OBJECT);
      }
      closeSync(a);
      closeSync(b);
      await qcow2.createSnapshot('s1');
      for (const [idx, data] of newData) await qcow2.write(idx * OBJECT, data);
      await qcow2.createSnapshot('s2');
      await qcow2.close();
      execFileSync(process.execPath, [
        bin,
        ...['create', '-F', join(dir, 'a.raw'), '-s', join(dir, 'b.raw')],
        ...['-o', join(dir, 'a-to-b.backup'), '--no-sync', '--progress', 'never'],
      ]);
    },
  );
  return {
    a: join(directory, 'a.raw'),
    b: join(directory, 'b.raw'),
    qcow2: join(directory, 'disk.qcow2'),
    stream: join(directory, 'a-to-b.backup'),
    label: `${size / MiB} MiB, ${changed.length} of ${objects} objects changed`,
  };
}

function output(name) {
  const directory = join(packageRoot, '.fixtures', 'bench-output');
  mkdirSync(directory, { recursive: true });
  return join(directory, name);
}

const BARE_LOOPS = {
  'one-thread': 'one thread, 64 KiB',
  pool: 'thread pool, 1 MiB',
  threads: 'a worker thread per core, 128 KiB',
};

const createRaw = (input, out) => ({
  name: `vdi-backup create raw (${input.label})`,
  argv: [
    ...[process.execPath, bin, 'create', '-F', input.a, '-s', input.b],
    ...['-o', out, '--no-sync', '--progress', 'never'],
  ],
  outputs: [out],
});

await runCases([
  {
    name: 'create-raw',
    prepare: async ({ quick }) => {
      const input = await inputs(quick);
      return {
        pkg: '@x/vdi-backup',
        ours: createRaw(input, output('ours.backup')),
        peers: [
          {
            name: 'cat a.raw b.raw > /dev/null',
            argv: ['sh', '-c', 'cat "$1" "$2" > /dev/null', 'sh', input.a, input.b],
            outputs: [],
          },
          ...['one-thread', 'pool', 'threads'].map((mode) => ({
            name: `bare loop: pread + compare only, ${BARE_LOOPS[mode]}`,
            argv: [process.execPath, join(here, 'bare-loop.mjs'), mode, input.a, input.b],
            outputs: [],
            target: null,
          })),
        ],
        target: { ratio: 1.25, peakRssKiB: 128 * 1024 },
      };
    },
  },
  {
    name: 'create-qcow2',
    prepare: async ({ quick }) => {
      const input = await inputs(quick);
      const out = output('ours-qcow2.backup');
      const stdout = execFileSync(process.execPath, [
        ...[bin, 'create', '-F', 's1', '-s', 's2', input.qcow2],
        ...['-o', out, '--no-sync', '--force', '--json'],
      ]).toString();
      // --json prints progress events (one line each) before the summary.
      const summary = JSON.parse(
        stdout
          .split('\n')
          .filter((line) => !line.startsWith('{"event"'))
          .join('\n'),
      );
      const read = `${Math.round(summary['bytes-read'] / MiB)} MiB read, ${Math.round(summary['bytes-skipped'] / MiB)} MiB skipped`;
      return {
        pkg: '@x/vdi-backup',
        ours: {
          name: `vdi-backup create qcow2 s1 s2 (${input.label}; ${read})`,
          argv: [
            ...[process.execPath, bin, 'create', '-F', 's1', '-s', 's2', input.qcow2],
            ...['-o', out, '--no-sync', '--progress', 'never'],
          ],
          outputs: [out],
        },
        peers: [createRaw(input, output('raw-case.backup'))],
        target: { ratio: 0.3 },
      };
    },
  },
  {
    name: 'restore-raw',
    prepare: async ({ quick }) => {
      const input = await inputs(quick);
      const ours = output('ours.raw');
      const peer = output('cp.raw');
      return {
        pkg: '@x/vdi-backup',
        ours: {
          name: `vdi-backup restore raw (${input.label})`,
          argv: [
            ...[process.execPath, bin, 'restore', '-s', input.a, ours],
            ...['-i', input.stream, '--no-sync', '--progress', 'never'],
          ],
          outputs: [ours],
        },
        peers: [
          {
            name: 'cp --sparse=always a.raw',
            argv: ['cp', '--sparse=always', input.a, peer],
            outputs: [peer],
          },
        ],
        target: { ratio: 1.25 },
      };
    },
  },
]);
