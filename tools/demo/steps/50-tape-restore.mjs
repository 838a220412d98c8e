// tape-restore: a PBS datastore with three snapshots written to a media set of small
// virtual tapes by @x/tape-restore/testing (as a PBS backup job writes them: chunks cut
// at end of media are written again on the next tape), then the tape-restore CLI: the
// inventory, a plan before any tape is loaded, a restore of one snapshot that reads only
// what the target lacks, a second one sharing most chunks, and a media verification.
import { execFile } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DatastoreBuilder, writeMediaSet } from '@x/tape-restore/testing';

const MiB = 2 ** 20;

export default async function tapeRestoreDemo(demo) {
  demo.heading('tape-restore: restore single snapshots from a PBS media set');
  const bin = join(demo.root, 'apps', 'tape-restore-cli', 'bin', 'tape-restore.js');
  const dir = (name) => join(demo.directory, name);

  const keystream = createCipheriv('aes-128-ctr', Buffer.alloc(16, 3), Buffer.alloc(16, 4));
  const disk = keystream.update(Buffer.alloc(8 * MiB));
  const disk2 = Buffer.concat([disk.subarray(0, 7 * MiB), keystream.update(Buffer.alloc(MiB))]);
  const store = await new DatastoreBuilder(dir('store1')).init();
  const snapshots = [
    ['vm/100/2024-05-01T00:00:00Z', disk],
    ['vm/100/2024-05-02T00:00:00Z', disk2],
  ];
  for (const [path, data] of snapshots) {
    const [type, id, time] = path.split('/');
    await store.addSnapshot({
      type,
      id,
      time,
      archives: [
        { name: 'drive-scsi0.img.fidx', kind: 'fidx', data, chunkSize: MiB },
        { name: 'qemu-server.conf.blob', kind: 'blob', data: Buffer.from('memory: 2048\n') },
      ],
    });
  }
  await store.addSnapshot({
    namespace: ['prod'],
    type: 'ct',
    id: '200',
    time: '2024-05-03T00:00:00Z',
    archives: [
      {
        name: 'root.pxar.didx',
        kind: 'didx',
        chunks: [Buffer.alloc(3 * MiB, 9), keystream.update(Buffer.alloc(MiB))],
      },
    ],
  });
  const [set, ms] = await demo.timed(() =>
    writeMediaSet({
      driveDir: dir('drive'),
      statusDir: dir('status'),
      pool: 'weekly',
      labelPrefix: 'WK',
      maxTapeSize: 6 * MiB,
      sources: [
        {
          store: 'store1',
          path: dir('store1'),
          snapshots: [...snapshots.map(([p]) => p), 'ns/prod/ct/200/2024-05-03T00:00:00Z'],
        },
      ],
    }),
  );
  demo.say(
    `wrote media set ${set.mediaSetUuid} in ${ms} ms: ${set.tapes.length} virtual tapes of 6 MiB, ` +
      `${set.cutChunks.length} chunks cut at end of media and written again on the next tape`,
  );

  const cli = (args, options) => runCli(demo, bin, args, options);
  await cli(['media', 'list', '--status-dir', dir('status'), '--drive', dir('drive')]);
  await mkdir(join(dir('target'), '.chunks'), { recursive: true });
  const common = [
    '--drive',
    dir('drive'),
    '--status-dir',
    dir('status'),
    '--media-set',
    set.mediaSetUuid,
    '--store',
    'target',
    '--datastore',
    `target=${dir('target')}`,
  ];
  await cli(['restore', ...common, '--snapshot', `store1:${snapshots[0][0]}`, '--plan'], {
    lines: 14,
  });
  const first = JSON.parse(
    await cli(['restore', ...common, '--snapshot', `store1:${snapshots[0][0]}`, '--json'], {
      lines: 14,
    }),
  );
  demo.say(
    `restored ${first.restored.join(', ')}: ${first.chunksRestored} chunks, ${first.tape.tapeFilesOpened} tape files opened`,
  );
  const second = JSON.parse(
    await cli(['restore', ...common, '--snapshot', `store1:${snapshots[1][0]}`, '--json'], {
      lines: 14,
    }),
  );
  demo.say(
    `the next snapshot shares ${second.chunksAlreadyPresent} chunks with it: only ${second.chunksRestored} read from tape ` +
      `(${second.tape.chunkEntriesDecoded} entries decoded, ${second.tape.tapeFilesOpened} tape files opened)`,
  );
  const restored = await readdir(join(dir('target'), 'vm', '100'));
  if (restored.filter((name) => name.startsWith('2024-')).length !== 2)
    throw new Error(`unexpected target content: ${restored}`);
  await cli(
    ['verify-media', set.tapes[0].label, '--drive', dir('drive'), '--status-dir', dir('status')],
    { lines: 6 },
  );
}

/** Runs the CLI bin, prints the command and (the first lines of) its output, checks the exit code. */
function runCli(demo, bin, args, { expect = 0, lines = 8 } = {}) {
  demo.say(
    `$ tape-restore ${args.map((arg) => (arg.includes('/') ? arg.split('/').at(-1) : arg)).join(' ')}`,
  );
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [bin, ...args], { encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      const output = `${stderr}${args.includes('--json') ? '' : stdout}`
        .trimEnd()
        .split('\n')
        .filter((line) => line.length > 0);
      for (const line of output.slice(0, lines)) demo.say(`    ${line}`);
      if (output.length > lines) demo.say(`    … (${output.length - lines} more lines)`);
      if (code !== expect) {
        reject(
          new Error(`tape-restore ${args[0]} exited ${code}, expected ${expect}: ${stderr.trim()}`),
        );
        return;
      }
      resolve(stdout);
    });
  });
}
