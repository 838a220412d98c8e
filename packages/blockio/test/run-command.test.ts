import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { stat, writeFile } from 'node:fs/promises';
import { makeTempDir } from '@x/test-utils';
import { describe, expect, it } from 'vitest';
import { childScript, distDirectory, distEntry } from './support/files.js';

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one runCommand action in a real child process (modes: test/children/command.mjs). */
function runMode(mode: string, ...args: string[]): Promise<Outcome> {
  distEntry('cli/index.js');
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [childScript('command.mjs'), distDirectory, mode, ...args],
      { encoding: 'utf8', env: { ...process.env, BLOCKKIT_DEBUG: '' } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('runCommand exit codes and error printing', () => {
  it('exits 0 on success, printing for people on stdout', async () => {
    expect(await runMode('ok')).toEqual({ code: 0, stdout: 'all good\n', stderr: '' });
  });

  it('exits with the code the action returns', async () => {
    expect((await runMode('own-code')).code).toBe(3);
  });

  it('exits 1 on a runtime failure, with one line and no stack trace', async () => {
    const outcome = await runMode('blockio-error');
    expect(outcome).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'demo-tool: error: disk.qcow2: L2 table 3 at offset 196608 (0x30000): L2 table entry points past the end\n',
    });
    const plain = await runMode('plain-error');
    expect(plain).toEqual({ code: 1, stdout: '', stderr: 'demo-tool: error: something broke\n' });
  });

  it('names the CLI flag for `overwrite` in an output-exists refusal, when told it', async () => {
    const scratch = await makeTempDir('blockio-exists-');
    try {
      const target = scratch.file('exists.img');
      await writeFile(target, 'keep');
      const library = await runMode('output-exists', target);
      expect(library.stderr).toBe(
        `demo-tool: error: ${target}: output file already exists (pass overwrite: true to replace it)\n`,
      );
      const cli = await runMode('output-exists', target, '--with-flag', '--json');
      expect(cli.code).toBe(1);
      expect(cli.stderr).toBe(
        `demo-tool: error: ${target}: output file already exists (use --force to replace it)\n`,
      );
      expect(JSON.parse(cli.stdout)).toMatchObject({
        code: 'EEXIST',
        path: target,
        message: 'output file already exists (use --force to replace it)',
      });
    } finally {
      await scratch.remove();
    }
  });

  it('names the CLI flag for any option the CLI maps, in text and JSON', async () => {
    const library = await runMode('needs-force');
    expect(library.stderr).toBe(
      'demo-tool: error: disk.img: the journal is newer than the image (pass force: true to replay it anyway)\n',
    );
    const cli = await runMode('needs-force', '--with-flag', '--json');
    expect(cli.stderr).toBe(
      'demo-tool: error: disk.img: the journal is newer than the image (use --yes-really to replay it anyway)\n',
    );
    expect(JSON.parse(cli.stdout)).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: 'the journal is newer than the image (use --yes-really to replay it anyway)',
    });
  });

  it('exits 2 on a usage error: one line naming the problem and --help', async () => {
    expect(await runMode('usage')).toEqual({
      code: 2,
      stdout: '',
      stderr: 'demo-tool: missing <source> argument (see --help)\n',
    });
    const json = await runMode('usage', '--json');
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toEqual({
      error: 'UsageError',
      code: 'USAGE',
      message: 'missing <source> argument',
    });
  });

  it("the option parser's errors: one line, exit 2, a JSON object with --json", async () => {
    expect(await runMode('parser-error')).toEqual({
      code: 2,
      stdout: '',
      stderr: "demo-tool: unknown option '--bogus' (see --help)\n",
    });
    const json = await runMode('parser-error', '--json');
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toEqual({
      error: 'UsageError',
      code: 'USAGE',
      message: "unknown option '--bogus'",
    });
    expect((await runMode('parser-help')).code).toBe(0);
  });

  it('ends error lines with the code in brackets when the CLI promises it', async () => {
    expect((await runMode('system-error')).stderr).toBe(
      'demo-tool: error: out.raw: at offset 8192 (0x2000): cannot write 4096 bytes: no space left on device\n',
    );
    const coded = await runMode('system-error', '--codes', '--json');
    expect(coded.stderr).toBe(
      'demo-tool: error: out.raw: at offset 8192 (0x2000): cannot write 4096 bytes: no space left on device [ENOSPC]\n',
    );
    expect(JSON.parse(coded.stdout)).toMatchObject({
      code: 'ENOSPC',
      message: 'cannot write 4096 bytes: no space left on device',
    });
  });

  it('with --json, prints the error as JSON on stdout and the line on stderr', async () => {
    const outcome = await runMode('blockio-error', '--json');
    expect(outcome.code).toBe(1);
    expect(JSON.parse(outcome.stdout)).toEqual({
      error: 'BlockIoError',
      code: 'CORRUPT',
      message: 'L2 table entry points past the end',
      path: 'disk.qcow2',
      offset: 0x30000,
      structure: 'L2 table 3',
    });
    expect(outcome.stderr).not.toContain('    at ');
  });

  it('with --json, keeps an offset above 2^53 exact (a decimal string)', async () => {
    const outcome = await runMode('unsafe-offset', '--json');
    expect(outcome.code).toBe(1);
    expect(JSON.parse(outcome.stdout)).toMatchObject({
      code: 'UNSAFE_INTEGER',
      offset: '1152921504606846977',
    });
    expect(outcome.stderr).toContain('at offset 1152921504606846977 (0x1000000000000001)');
  });

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('on %s aborts the job, lets it clean up, and exits %d', async (name, exitCode) => {
    const scratch = await makeTempDir('blockio-sigint-');
    const target = scratch.file('interrupted.img');
    const child = spawn(
      process.execPath,
      [childScript('command.mjs'), distDirectory, 'wait-for-signal', target],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => {
      stderr += data.toString();
    });
    const exited = once(child, 'exit');
    const [ready] = (await once(child.stdout, 'data')) as [Buffer];
    expect(ready.toString()).toBe('ready\n');
    expect((await stat(`${target}.partial`)).size).toBe(4096);
    child.kill(name);
    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: exitCode, signal: null });
    expect(stderr).toBe(`\ndemo-tool: ${name} received, cleaning up…\n`);
    await expect(stat(`${target}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(target)).rejects.toMatchObject({ code: 'ENOENT' });
    await scratch.remove();
  });

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)(
    'with --json, an %s still ends the run with one JSON result object',
    async (name, exitCode) => {
      const scratch = await makeTempDir('blockio-sigint-json-');
      const target = scratch.file('interrupted.img');
      const child = spawn(
        process.execPath,
        [childScript('command.mjs'), distDirectory, 'wait-for-signal', target, '--json'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      child.stdout.on('data', (data: Buffer) => {
        stdout += data.toString();
      });
      const exited = once(child, 'exit');
      while (!stdout.includes('ready\n')) await once(child.stdout, 'data');
      child.kill(name);
      const [code] = await exited;
      expect(code).toBe(exitCode);
      const lines = stdout.trim().split('\n');
      expect(JSON.parse(lines.at(-1) as string)).toMatchObject({
        code: 'INTERRUPTED',
        signal: name,
      });
      await scratch.remove();
    },
  );

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)(
    'a second %s while cleanup hangs still removes the partial output',
    async (name, exitCode) => {
      const scratch = await makeTempDir('blockio-sigint-twice-');
      const target = scratch.file('interrupted.img');
      const child = spawn(
        process.execPath,
        [childScript('command.mjs'), distDirectory, 'stuck-cleanup', target],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (data: Buffer) => {
        stderr += data.toString();
      });
      const exited = once(child, 'exit');
      const [ready] = (await once(child.stdout, 'data')) as [Buffer];
      expect(ready.toString()).toBe('ready\n');
      child.kill(name);
      while (!stderr.includes('cleaning up')) await once(child.stderr, 'data');
      child.kill(name);
      const [code] = await exited;
      expect(code).toBe(exitCode);
      await expect(stat(`${target}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(stat(target)).rejects.toMatchObject({ code: 'ENOENT' });
      await scratch.remove();
    },
  );
});
