// Issue 14, as a new user meets it: the qcow2 CLI never makes things worse.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { filesEqual, makeTempDir, runPeerOk, seededBytes } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2 } from './support/cli.js';

const temp = await makeTempDir('qcow2-cli-never-worse-');
afterAll(() => temp.remove());

let image: string;
beforeAll(async () => {
  image = temp.file('v3.qcow2');
  await runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', image, '4M']);
  await runPeerOk('qemu-io', ['-c', 'write -P 0x5a 0 1M', image]);
});

describe('usage errors caught by the option parser', () => {
  it.each([
    [['convert', '--bogus', 'a', 'b'], "unknown option '--bogus'"],
    [['convert', '-O', 'vmdk', 'a', 'b'], "argument 'vmdk' is invalid"],
    [['info'], "missing required argument 'image'"],
  ])('qcow2 %j: one line naming the problem and --help, exit 2', async (args, problem) => {
    const result = await qcow2(...args);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^qcow2: .*\(see --help\)\n$/);
    expect(result.stderr).toContain(problem);
    const json = await qcow2(...args, '--json');
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ code: 'USAGE', error: 'UsageError' });
  });

  it('--version and -V print the version', async () => {
    for (const flag of ['--version', '-V']) {
      const result = await qcow2(flag);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    }
  });

  it('the bin answers a lone --version itself with what the full parser says: the package version', async () => {
    const { version } = JSON.parse(
      await readFile(new URL('../package.json', import.meta.url), 'utf8'),
    ) as { version: string };
    // A second flag takes the bin past its fast path, into commander.
    for (const args of [['-V'], ['--version'], ['-V', '-V']]) {
      expect(await qcow2(...args)).toMatchObject({ code: 0, stdout: `${version}\n` });
    }
  });
});

describe('outputs', () => {
  it('convert refuses an output that is its input (same path or a link), nothing changed', async () => {
    const input = temp.file('precious.qcow2');
    execFileSync('cp', [image, input]);
    await symlink(input, temp.file('precious-link.qcow2'));
    for (const output of [input, temp.file('precious-link.qcow2')]) {
      for (const format of ['raw', 'qcow2']) {
        const result = await qcow2('convert', '-O', format, '--force', input, output);
        expect(result.code).toBe(1);
        expect(result.stderr).toContain('is the same file as the input');
      }
    }
    expect(await filesEqual(input, image)).toBe(true);
    const json = await qcow2('convert', '--force', '--json', input, input);
    expect(JSON.parse(json.stdout)).toMatchObject({ code: 'SAME_FILE', path: input });
  });

  it('convert creates its output 0600', async () => {
    const output = temp.file('private.raw');
    const umask = process.umask(0o022);
    try {
      expect((await qcow2('convert', image, output)).code).toBe(0);
    } finally {
      process.umask(umask);
    }
    expect((await stat(output)).mode & 0o777).toBe(0o600);
  });

  it('errors name the output given, not its temporary .partial file', async () => {
    const result = await qcow2('convert', image, temp.file('nodir/x.raw'));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${temp.file('nodir/x.raw')}: cannot open for writing`);
    expect(result.stderr).not.toContain('.partial');
  });
});

describe('inputs that are not files', () => {
  it('a QCOW2 piped in is refused, not converted to an empty file', async () => {
    const output = temp.file('from-pipe.raw');
    const result = execFileSync(
      'sh',
      [
        '-c',
        `cat '${image}' | '${process.execPath}' '${BIN()}' convert /dev/stdin '${output}'; echo "rc=$?"`,
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    expect(result).toContain('rc=1');
    await expect(stat(output)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('info on a FIFO says what it is (and does not wait for a writer)', async () => {
    const fifo = temp.file('fifo');
    execFileSync('mkfifo', [fifo]);
    const result = await qcow2('info', fifo);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('is a pipe (FIFO), not a regular file or block device');
  });
});

describe('Ctrl-C twice', () => {
  it('convert -c: a second SIGINT right after the first still leaves no .partial', async () => {
    const directory = await makeTempDir('qcow2-cli-sigint-');
    try {
      const input = directory.file('random.raw');
      // Incompressible data: deflating it keeps the job busy for a while.
      await writeFile(input, seededBytes(96 << 20, 14));
      const output = directory.file('out.qcow2');
      const child = spawn(
        process.execPath,
        [BIN(), 'convert', '-O', 'qcow2', '-c', '--json', input, output],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (data: Buffer) => {
        stdout += data.toString();
      });
      child.stderr.on('data', (data: Buffer) => {
        stderr += data.toString();
      });
      const exited = once(child, 'exit');
      while (!stdout.includes('"progress"')) await once(child.stdout, 'data');
      child.kill('SIGINT');
      // The second while the first one's cleanup runs, as an impatient user does.
      while (!stderr.includes('cleaning up')) await once(child.stderr, 'data');
      child.kill('SIGINT');
      const [code] = await exited;
      expect(code).toBe(130);
      expect(await readdir(directory.path)).toEqual(['random.raw']);
      const last = stdout.trim().split('\n').at(-1) as string;
      expect(JSON.parse(last)).toMatchObject({ code: 'INTERRUPTED', signal: 'SIGINT' });
    } finally {
      await directory.remove();
    }
  });
});

function BIN(): string {
  return new URL('../bin/qcow2.js', import.meta.url).pathname;
}
