import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { makeTempDir, runPeerOk, runWithClosedReader, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_ROOT } from './support/cli.js';

const BIN = join(APP_ROOT, 'bin', 'qcow2.js');

// `qcow2 dump … | head`: the reader goes away after a few lines. Node ignores SIGPIPE,
// so the next write fails with EPIPE; it used to end in an unhandled 'error' stack
// trace. The command must end quietly with 141, as a C tool killed by SIGPIPE would.
describe('a reader that closes standard output early', () => {
  let dir: TempDir;
  let image: string;
  beforeAll(async () => {
    dir = await makeTempDir('qcow2-closed-output-');
    image = dir.file('big-metadata.qcow2');
    // 262,144 allocated L2 entries: many megabytes of dump output.
    await runPeerOk('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-o',
      'preallocation=metadata',
      image,
      '16G',
    ]);
  });
  afterAll(() => dir.remove());

  for (const args of [
    ['dump', '--l2'],
    ['dump', '--l2', '--json'],
    ['map'],
    ['check', '--mode', 'dump'],
  ]) {
    it(`qcow2 ${args.join(' ')} | head: exit 141, no stack trace`, async () => {
      const result = await runWithClosedReader(BIN, [...args, image]);
      expect(result.bytesSeen).toBeGreaterThan(0);
      expect(result.stderr).not.toMatch(/\n\s+at |Unhandled|EPIPE/);
      expect(result.code).toBe(141);
    });
  }
});

// `qcow2 snapshot --help | head -1`: the help text is written, head exits, and the
// EPIPE of a later write used to surface as an unhandled 'error' while the parser's
// error path was still loading (14 of 20 runs). --help is done; it ends quietly.
describe('help into a reader that closes early', () => {
  it('qcow2 snapshot --help | head -1: no stack trace, 20 times', () => {
    for (let run = 0; run < 20; run++) {
      const result = spawnSync(
        'sh',
        ['-c', `"${process.execPath}" "${BIN}" snapshot --help | head -1 >/dev/null`],
        { encoding: 'utf8' },
      );
      expect(result.stderr).not.toMatch(/\n\s+at |Unhandled|EPIPE/);
      expect(result.status).toBe(0);
    }
  });
});

describe('the version into a reader that closes at once', () => {
  it('qcow2 -V | true (the bin answers -V itself): no stack trace, 20 times', () => {
    for (let run = 0; run < 20; run++) {
      const result = spawnSync('sh', ['-c', `"${process.execPath}" "${BIN}" -V | true`], {
        encoding: 'utf8',
      });
      expect(result.stderr).not.toMatch(/\n\s+at |Unhandled|EPIPE/);
    }
  });
});
