// @x/tape-restore benchmarks. Protocol and method: tools/bench/README.md.
//
// phase2-zstd: a datastore snapshot of 2 GiB (--quick: 256 MiB) in 4 MiB chunks, each
// compressed by the real `zstd -1` as a streaming frame (no content size, as PBS writes
// plain chunks), about 2:1, written by @x/tape-restore/testing to one virtual tape. Ours:
// `tape-restore restore` of that snapshot into an empty datastore (phase 1, phase 2
// reading every chunk: CRC, decompress, SHA-256, insert; phase 3). Peer: `zstd -d` of
// the same frames piped into `sha256sum`, two processes, so both cores work, as ours may
// use them. Target (issue 16): throughput >= 50% of the peer's (ratio <= 2.0), peak RSS
// <= 256 MiB. A `cat` of the tape file is shown for information (the I/O floor).
//
// plan-1m: a 20-tape media set whose catalogs hold 1,000,000 chunk entries (50 chunk
// archives of 1,000 chunks per tape, a snapshot after each), no tape data. Ours:
// `tape-restore restore --plan --json` of the last snapshot into an empty datastore.
// Target: <= 2 s, measured against `sleep 2` (ratio <= 1.0).
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { runCases } from '@x/bench';
import { MediaCatalogBuilder } from '@x/tape-restore';
import { DatastoreBuilder, writeMediaSet } from '@x/tape-restore/testing';
import { cachedFixture } from '@x/test-utils';

const packageRoot = resolve(import.meta.dirname, '..');
const bin = resolve(packageRoot, '..', '..', 'apps', 'tape-restore-cli', 'bin', 'tape-restore.js');
const MiB = 2 ** 20;
const CHUNK = 4 * MiB;

/** 4 MiB of data zstd -1 halves: random 256-byte runs between zero runs. */
function chunkData(index) {
  const out = Buffer.alloc(CHUNK);
  const random = randomBytes(CHUNK / 2);
  for (let at = 0, from = 0; at < CHUNK; at += 512, from += 256)
    random.copy(out, at, from, from + 256);
  out.writeUInt32LE(index, 0);
  return out;
}

function zstd(plaintext) {
  const result = spawnSync('zstd', ['-1', '-q', '-c', '--no-check'], {
    input: plaintext,
    maxBuffer: 2 * CHUNK,
  });
  if (result.status !== 0) throw new Error(`zstd failed: ${result.stderr}`);
  return result.stdout;
}

const phase2 = {
  name: 'phase2-zstd',
  prepare: async ({ quick }) => {
    const size = quick ? 256 * MiB : 2048 * MiB;
    const dir = await cachedFixture(
      packageRoot,
      'bench-phase2',
      `phase2 v1 ${size}`,
      async (scratch) => {
        const frames = openSync(join(scratch, 'frames.zst'), 'w');
        const compressor = (plaintext) => {
          const frame = zstd(plaintext);
          writeSync(frames, frame);
          return frame;
        };
        const data = Buffer.concat(Array.from({ length: size / CHUNK }, (_, i) => chunkData(i)));
        const store = await new DatastoreBuilder(join(scratch, 'store1')).init();
        await store.addSnapshot({
          type: 'vm',
          id: '100',
          time: '2024-01-01T00:00:00Z',
          compressor,
          archives: [{ name: 'drive-scsi0.img.fidx', kind: 'fidx', data, chunkSize: CHUNK }],
        });
        closeSync(frames);
        const set = await writeMediaSet({
          driveDir: join(scratch, 'drive'),
          statusDir: join(scratch, 'status'),
          pool: 'bench',
          labelPrefix: 'B',
          maxTapeSize: 2 * size + 64 * MiB,
          sources: [
            {
              store: 'store1',
              path: join(scratch, 'store1'),
              snapshots: ['vm/100/2024-01-01T00:00:00Z'],
            },
          ],
        });
        spawnSync('rm', ['-rf', join(scratch, 'store1')]);
        await writeFile(join(scratch, 'media-set'), set.mediaSetUuid);
      },
    );
    const { readFileSync } = await import('node:fs');
    const mediaSet = readFileSync(join(dir, 'media-set'), 'utf8');
    const target = join(dir, 'target');
    const restore = [
      `rm -rf '${target}' && mkdir -p '${target}/.chunks' &&`,
      `'${process.execPath}' '${bin}' restore --drive '${join(dir, 'drive')}' --status-dir '${join(dir, 'status')}'`,
      `--media-set ${mediaSet} --store target --datastore 'target=${target}'`,
      `--snapshot store1:vm/100/2024-01-01T00:00:00Z --progress never >/dev/null 2>&1`,
    ].join(' ');
    return {
      pkg: '@x/tape-restore',
      ours: { name: 'tape-restore restore (phase 2: all chunks)', argv: ['sh', '-c', restore] },
      peers: [
        {
          name: 'zstd -d | sha256sum',
          argv: ['sh', '-c', `zstd -d -q -c '${join(dir, 'frames.zst')}' | sha256sum >/dev/null`],
        },
        {
          name: 'cat tape file',
          argv: ['sh', '-c', `cat '${join(dir, 'drive')}'/tapefile-*-B00001.json >/dev/null`],
          target: null,
        },
      ],
      target: { ratio: 2.0, peakRssKiB: 256 * 1024 },
    };
  },
};

const plan = {
  name: 'plan-1m',
  prepare: async () => {
    const dir = await cachedFixture(
      packageRoot,
      'bench-plan',
      'plan v1 20x50x1000',
      async (scratch) => {
        const status = join(scratch, 'status');
        await mkdir(status, { recursive: true });
        await mkdir(join(scratch, 'drive'), { recursive: true });
        await mkdir(join(scratch, 'target', '.chunks'), { recursive: true });
        const mediaSet = uuid();
        const inventory = [];
        let last = '';
        for (let seq = 0; seq < 20; seq++) {
          const media = uuid();
          const catalog = new MediaCatalogBuilder(media, mediaSet, seq);
          let file = 2 + seq;
          for (let archive = 0; archive < 50; archive++) {
            const digests = Array.from({ length: 1000 }, () => randomBytes(32).toString('hex'));
            catalog.chunkArchive(file++, uuid(), 'store1', digests);
            last = `vm/${seq * 50 + archive}/2024-01-01T00:00:00Z`;
            catalog.snapshot(file++, uuid(), 'store1', last);
          }
          await writeFile(join(status, `${media}.log`), catalog.bytes());
          const label = `P${String(seq).padStart(5, '0')}`;
          inventory.push({
            id: {
              label: { label_text: label, uuid: media, ctime: 0, pool: 'p' },
              media_set_label: { pool: 'p', uuid: mediaSet, seq_nr: seq, ctime: 0 },
            },
            location: 'offline',
            status: 'full',
          });
        }
        inventory.sort((a, b) => (a.id.label.uuid < b.id.label.uuid ? -1 : 1));
        await writeFile(join(status, 'inventory.json'), JSON.stringify(inventory, null, 2));
        await writeFile(join(scratch, 'args.json'), JSON.stringify({ mediaSet, last }));
      },
    );
    const { readFileSync } = await import('node:fs');
    const { mediaSet, last } = JSON.parse(readFileSync(join(dir, 'args.json'), 'utf8'));
    return {
      pkg: '@x/tape-restore',
      ours: {
        name: 'tape-restore restore --plan (20 tapes, 1M entries)',
        argv: [
          process.execPath,
          bin,
          'restore',
          '--drive',
          join(dir, 'drive'),
          '--status-dir',
          join(dir, 'status'),
          '--media-set',
          mediaSet,
          '--store',
          'target',
          '--datastore',
          `target=${join(dir, 'target')}`,
          '--snapshot',
          `store1:${last}`,
          '--plan',
          '--json',
        ],
      },
      peers: [{ name: '2 s budget (sleep 2)', argv: ['sleep', '2'] }],
      target: { ratio: 1.0 },
    };
  },
};

function uuid() {
  const h = createHash('sha256').update(randomBytes(16)).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

await runCases([phase2, plan]);
