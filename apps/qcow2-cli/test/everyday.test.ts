// Issue 14, section 3: what a user meets in everyday use of qcow2.
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { filesEqual, makeTempDir, pokeU64BE, readU64BE, runPeerOk } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2 } from './support/cli.js';

const temp = await makeTempDir('qcow2-cli-everyday-');
afterAll(() => temp.remove());

let image: string;
let reference: string;
beforeAll(async () => {
  image = temp.file('v3.qcow2');
  await runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', image, '4M']);
  await runPeerOk('qemu-io', ['-c', 'write -P 0x5a 0 1M', '-c', 'write -P 0x33 3M 64k', image]);
  reference = temp.file('reference.raw');
  await runPeerOk('qemu-img', ['convert', '-O', 'raw', image, reference]);
});

describe('writing commands refuse a file that is not QCOW2', () => {
  it.each([
    [['set-feature', '--set', 'dirty']],
    [['repair']],
    [['poke', '--offset', '79', '--value', '1', '--force']],
  ])('qcow2 %j on raw zeros: NOT_QCOW2, not a byte changed', async (args) => {
    const raw = temp.file(`zeros-${args[0]}.img`);
    await writeFile(raw, Buffer.alloc(1 << 20));
    const result = await qcow2(...args, raw, '--json');
    // repair has check's exit codes: 8 is "cannot open or read the image".
    expect(result.code, result.stderr).toBe(args[0] === 'repair' ? 8 : 1);
    expect(JSON.parse(result.stdout.trim().split('\n').at(-1) as string)).toMatchObject({
      code: 'NOT_QCOW2',
    });
    expect((await readFile(raw)).every((byte) => byte === 0)).toBe(true);
  });
});

describe('convert -p', () => {
  it('takes no value: `-p in out` converts in to out', async () => {
    const output = temp.file('p.raw');
    const result = await qcow2('convert', '-p', image, output);
    expect(result.code, result.stderr).toBe(0);
    expect(await filesEqual(output, reference)).toBe(true);
    expect(result.stderr).not.toContain('\x1b'); // -p into a pipe: plain lines
  });

  it('--progress still takes a mode', async () => {
    const result = await qcow2('convert', '--progress', 'never', image, temp.file('never.raw'));
    expect(result).toMatchObject({ code: 0, stderr: '' });
  });
});

describe('info on a damaged image', () => {
  it('a bad L1 entry: prints the header, says what could not be read, points to check', async () => {
    const damaged = temp.file('bad-l1.qcow2');
    await copyFile(image, damaged);
    const l1 = Number(await readU64BE(damaged, 40));
    await pokeU64BE(damaged, l1, 0x80000000_00000000n | (1n << 40n)); // L2 table far past the end
    const result = await qcow2('info', damaged);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('virtual size: 4.00 MiB (4194304 bytes)');
    expect(result.stdout).toContain('cluster_size: 65536');
    expect(result.stdout).toContain('Could not read (the image is damaged):');
    expect(result.stdout).toContain(`qcow2 check ${damaged}`);
    const json = await qcow2('info', '--json', damaged);
    expect(json.code).toBe(1);
    const document = JSON.parse(json.stdout);
    expect(document['virtual-size']).toBe(4194304);
    expect(document.problems.length).toBeGreaterThan(0);
    expect(document.allocation).toBeUndefined();
  });

  it('truncated to 2 MiB: the header is still printed', async () => {
    const damaged = temp.file('short.qcow2');
    await copyFile(image, damaged);
    await truncate(damaged, 200_000);
    const result = await qcow2('info', damaged);
    expect(result.stdout).toContain('virtual size: 4.00 MiB');
    expect(result.stdout).toContain('Could not read');
    expect(result.code).toBe(1);
  });
});

describe('a missing backing file', () => {
  it('is named as the backing file of the image that names it, with its path in the JSON', async () => {
    const directory = await makeTempDir('qcow2-cli-backing-');
    try {
      const base = directory.file('base.qcow2');
      const overlay = directory.file('overlay.qcow2');
      await copyFile(image, base);
      await runPeerOk('qemu-img', [
        'create',
        '-q',
        '-f',
        'qcow2',
        '-b',
        base,
        '-F',
        'qcow2',
        overlay,
      ]);
      await rm(base);
      for (const args of [
        ['convert', overlay, directory.file('out.raw')],
        ['info', '--backing-chain', overlay],
        ['map', overlay],
      ]) {
        const result = await qcow2(...args, '--json');
        expect(result.code, args.join(' ')).toBe(1);
        expect(result.stderr).toContain(`cannot open the backing file of ${overlay}`);
        expect(result.stderr).not.toMatch(/ENOENT: |stat '/);
        const error = JSON.parse(result.stdout.trim().split('\n').at(-1) as string);
        expect(error).toMatchObject({ code: 'ENOENT', path: base, structure: 'backing file' });
      }
    } finally {
      await directory.remove();
    }
  });
});

describe('conflicting or empty arguments are usage errors before any work', () => {
  it.each([
    [
      ['set-feature', '--set', 'dirty', '--clear', 'dirty', 'IMAGE'],
      'cannot both --set and --clear dirty',
    ],
    [
      ['convert', '-f', 'raw', '-s', '1', 'IMAGE', 'OUT'],
      '-s/--snapshot needs a qcow2 input; -f raw has no snapshots',
    ],
    [['snapshot', 'list', 'IMAGE', 'extra'], 'snapshot list takes only an image, not "extra"'],
    [['convert', 'IMAGE', ''], 'the <output> argument is empty'],
    [['convert', '', 'OUT'], 'the <input> argument is empty'],
    [['convert', '--cluster-size', '', 'IMAGE', 'OUT'], 'the --cluster-size option is empty'],
  ])('qcow2 %j', async (args, problem) => {
    const output = temp.file('never-written.raw');
    const resolved = args.map((arg) => (arg === 'IMAGE' ? image : arg === 'OUT' ? output : arg));
    const before = await readFile(image);
    const result = await qcow2(...resolved);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`qcow2: ${problem} (see --help)\n`);
    expect((await readFile(image)).equals(before)).toBe(true);
    await expect(stat(output)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('convert onto a block device', () => {
  it('writes every byte in place with --force, refuses without it and when it is mounted', async () => {
    const backing = temp.file('loop-backing.img');
    await writeFile(backing, Buffer.alloc(8 << 20, 0xee));
    const loop = execFileSync('losetup', ['--find', '--show', backing], {
      encoding: 'utf8',
    }).trim();
    try {
      const refused = await qcow2('convert', image, loop);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`${loop}: is a block device`);
      expect(refused.stderr).toContain('use --force');
      expect(refused.stderr).not.toContain('device option');
      const written = await qcow2('convert', '--force', image, loop);
      expect(written.code, written.stderr).toBe(0);
      const device = await readFile(loop);
      const expected = await readFile(reference);
      expect(device.subarray(0, expected.length).equals(expected)).toBe(true);
      // A mounted device is refused (TARGET_BUSY) and left as it was.
      execFileSync('mke2fs', ['-q', '-F', loop]);
      const mountPoint = temp.file('mnt');
      await mkdir(mountPoint);
      execFileSync('mount', [loop, mountPoint]);
      try {
        const busy = await qcow2('convert', '--force', '--json', image, loop);
        expect(busy.code).toBe(1);
        expect(busy.stderr).toContain('the device is in use');
        expect(JSON.parse(busy.stdout.trim().split('\n').at(-1) as string)).toMatchObject({
          code: 'TARGET_BUSY',
        });
      } finally {
        execFileSync('umount', [mountPoint]);
      }
      const qcow2Out = await qcow2('convert', '-O', 'qcow2', '--force', image, loop);
      expect(qcow2Out.code).toBe(1);
      expect(qcow2Out.stderr).toContain('convert to raw (-O raw) onto a device');
    } finally {
      execFileSync('losetup', ['--detach', loop]);
    }
  });
});

describe('compare -p', () => {
  it('takes no value: `-p a b` compares a with b', async () => {
    const result = await qcow2('compare', '-p', image, reference);
    expect(result.code, result.stderr).toBe(0);
  });
});
