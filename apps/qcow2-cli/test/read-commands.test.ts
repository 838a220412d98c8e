import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  cachedFixture,
  filesEqual,
  makeTempDir,
  pokeBytes,
  pokeU64BE,
  readU64BE,
  runPeerOk,
  seededBytes,
} from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const APP_ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const BIN = join(APP_ROOT, 'bin', 'qcow2.js');
const temp = await makeTempDir('qcow2-cli-read-');
afterAll(() => temp.remove());

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `qcow2` bin as a child process. */
function qcow2(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const qemuImg = (...args: string[]) => runPeerOk('qemu-img', args);

let chainTop: string;
let image: string;
let rawInput: string;

beforeAll(async () => {
  const directory = await cachedFixture(APP_ROOT, 'cli-read', 'cli-read v1', async (dir) => {
    const base = join(dir, 'base.qcow2');
    await qemuImg('create', '-q', '-f', 'qcow2', base, '16M');
    const sample = join(dir, 'sample.raw');
    await writeFile(sample, seededBytes(4 << 20, 5));
    await runPeerOk('qemu-io', [
      '-c',
      `write -s ${sample} 0 4M`,
      '-c',
      'write -c -P 0x77 8M 128k',
      base,
    ]);
    await qemuImg('snapshot', '-c', 'first', base);
    await runPeerOk('qemu-io', ['-c', 'write -P 0x55 1M 1M', '-c', 'write -z 12M 64k', base]);
    await qemuImg(
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      'base.qcow2',
      '-F',
      'qcow2',
      join(dir, 'top.qcow2'),
      '24M',
    );
    await runPeerOk('qemu-io', [
      '-c',
      'write -P 0x66 2M 64k',
      '-c',
      'write -P 0x67 20M 1M',
      join(dir, 'top.qcow2'),
    ]);
    await writeFile(
      join(dir, 'input.raw'),
      Buffer.concat([seededBytes(1 << 20, 9), Buffer.alloc(3 << 20)]),
    );
  });
  image = join(directory, 'base.qcow2');
  chainTop = join(directory, 'top.qcow2');
  rawInput = join(directory, 'input.raw');
});

describe('qcow2 info', () => {
  it('--json agrees with qemu-img info on the keys both print', async () => {
    const run = await qcow2('info', '--json', image);
    expect(run.code).toBe(0);
    const ours = JSON.parse(run.stdout);
    const qemu = JSON.parse((await qemuImg('info', '--output=json', image)).stdout);
    for (const key of Object.keys(qemu)) expect(ours[key], key).toEqual(qemu[key]);
    expect(ours.features.incompatible).toEqual([]);
    expect(ours.allocation['compressed-clusters']).toBe(2);
  });

  it('human output on stdout, --backing-chain lists every layer', async () => {
    const run = await qcow2('info', '--backing-chain', chainTop);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^image: .*top\.qcow2$/m);
    expect(run.stdout).toMatch(/^image: .*base\.qcow2$/m);
    expect(run.stdout).toMatch(/^backing file: base\.qcow2 \(actual path: .*\)$/m);
    expect(run.stdout).toMatch(/^1 +first /m);
    const json = JSON.parse((await qcow2('info', '--json', '--backing-chain', chainTop)).stdout);
    expect(json.map((layer: { filename: string }) => layer.filename)).toEqual([
      chainTop,
      join(chainTop, '..', 'base.qcow2'),
    ]);
  });

  it('--backing deny refuses to follow the chain (exit 1, typed error in --json)', async () => {
    const run = await qcow2('info', '--json', '--backing-chain', '--backing', 'deny', chainTop);
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout).code).toBe('BACKING_DENIED');
    expect(run.stderr).toMatch(/qcow2: error: /);
  });

  it('exit 1 for a missing file, 2 for a bad option', async () => {
    expect((await qcow2('info', temp.file('missing.qcow2'))).code).toBe(1);
    expect((await qcow2('info', '--backing', 'maybe', image)).code).toBe(2);
  });
});

describe('qcow2 map', () => {
  it('--json agrees with qemu-img map --output=json on the overlapping fields', async () => {
    const run = await qcow2('map', '--json', chainTop);
    expect(run.code).toBe(0);
    const keys = ['start', 'length', 'depth', 'present', 'zero', 'data', 'offset'];
    const pick = (entry: Record<string, unknown>) =>
      Object.fromEntries(keys.filter((key) => key in entry).map((key) => [key, entry[key]]));
    const qemu = JSON.parse((await qemuImg('map', '--output=json', chainTop)).stdout);
    expect(JSON.parse(run.stdout).map(pick)).toEqual(qemu.map(pick));
  });

  it('human output lists compressed runs (qemu-img gives up on them)', async () => {
    const run = await qcow2('map', image);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^0x800000\s+0x20000\s+data, compressed\s+0\s+-/m);
  });
});

describe('qcow2 convert', () => {
  it('-O raw output equals qemu-img convert byte for byte (chain, snapshot, raw input)', async () => {
    const cases: Array<[string, string[], string[]]> = [
      [chainTop, [], []],
      [image, ['--snapshot', 'first'], ['-l', 'snapshot.name=first']],
      [rawInput, ['--no-sync'], []],
    ];
    for (const [index, [input, ours, theirs]] of cases.entries()) {
      const out = temp.file(`ours-${index}.raw`);
      const expected = temp.file(`qemu-${index}.raw`);
      const run = await qcow2('convert', ...ours, input, out);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toBe('');
      await qemuImg('convert', '-O', 'raw', ...theirs, input, expected);
      expect(await filesEqual(out, expected)).toBe(true);
      expect(existsSync(`${out}.partial`)).toBe(false);
    }
  });

  it('--json prints JSON lines ending in a done event', async () => {
    const out = temp.file('json.raw');
    const run = await qcow2('convert', '--json', image, out);
    expect(run.code).toBe(0);
    const lines = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const done = lines.at(-1);
    expect(done).toMatchObject({ event: 'done', 'virtual-size': 16 << 20 });
    expect(lines.slice(0, -1).every((line) => line.event === 'progress')).toBe(true);
  });

  it('refuses to overwrite without --force, replaces with it', async () => {
    const out = temp.file('exists.raw');
    await writeFile(out, 'keep me');
    const refused = await qcow2('convert', image, out);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `${out}: output file already exists (use --force to replace it)`,
    );
    expect((await qcow2('convert', '--force', image, out)).code).toBe(0);
  });

  it('usage errors exit 2', async () => {
    expect((await qcow2('convert', '-O', 'vmdk', image, temp.file('x'))).code).toBe(2);
    expect((await qcow2('convert', '-c', image, temp.file('y.raw'))).code).toBe(2);
    for (const size of ['3000', '4M', '256', 'big']) {
      const run = await qcow2(
        'convert',
        '-O',
        'qcow2',
        '--cluster-size',
        size,
        image,
        temp.file('z'),
      );
      expect(run.code, size).toBe(2);
      expect(run.stderr).toMatch(/cluster.size/);
    }
    expect(existsSync(temp.file('z'))).toBe(false);
  });

  it('-O qcow2 [-c] [--cluster-size] output equals qemu-img convert byte for byte', async () => {
    const cases: Array<[string, string[], string[]]> = [
      [chainTop, [], []],
      [image, ['--snapshot', 'first', '-c'], ['-l', 'snapshot.name=first', '-c']],
      [rawInput, ['--cluster-size', '4k', '--no-sync'], ['-o', 'cluster_size=4096']],
      [rawInput, ['-c', '--cluster-size', '2M'], ['-c', '-o', 'cluster_size=2M']],
    ];
    for (const [index, [input, ours, theirs]] of cases.entries()) {
      const out = temp.file(`ours-${index}.qcow2`);
      const expected = temp.file(`qemu-${index}.qcow2`);
      const run = await qcow2('convert', '-O', 'qcow2', ...ours, input, out);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toBe('');
      await qemuImg('convert', '-O', 'qcow2', ...theirs, input, expected);
      expect(await filesEqual(out, expected), `${input} ${ours.join(' ')}`).toBe(true);
      expect(existsSync(`${out}.partial`)).toBe(false);
    }
    const check = await runPeerOk('qemu-img', ['check', temp.file('ours-1.qcow2')]);
    expect(check.stdout).toMatch(/No errors were found on the image/);
  });

  it('-O qcow2 --json ends in a done event with the file size', async () => {
    const out = temp.file('json.qcow2');
    const run = await qcow2('convert', '-O', 'qcow2', '--json', image, out);
    expect(run.code, run.stderr).toBe(0);
    const done = JSON.parse(run.stdout.trim().split('\n').at(-1) as string);
    expect(done).toMatchObject({ event: 'done', format: 'qcow2', 'virtual-size': 16 << 20 });
    expect(done['file-size']).toBeGreaterThan(4 << 20);
    expect(done['bytes-written']).toBeGreaterThanOrEqual(4 << 20);
  });

  it('compressed images (zlib, zstd) inflate on workers: same bytes as qemu-img; a bad cluster is named', async () => {
    for (const type of ['zlib', 'zstd']) {
      const input = temp.file(`compressed-${type}.qcow2`);
      await qemuImg('create', '-q', '-f', 'qcow2', '-o', `compression_type=${type}`, input, '8M');
      await runPeerOk('qemu-io', [
        ...['write -c -P 0x61 0 3M', 'write -P 0x62 3M 64k', 'write -c -P 0 5M 1M'].flatMap(
          (command) => ['-c', command],
        ),
        input,
      ]);
      const out = temp.file(`compressed-${type}.raw`);
      const expected = temp.file(`compressed-${type}-qemu.raw`);
      const run = await qcow2('convert', '--no-sync', input, out);
      expect(run.code, run.stderr).toBe(0);
      await qemuImg('convert', '-O', 'raw', input, expected);
      expect(await filesEqual(out, expected)).toBe(true);
      // Damage the compressed bytes of guest cluster 20 (L1[0] -> L2 entry 20).
      const l1 = Number(await readU64BE(input, 40));
      const l2 = Number((await readU64BE(input, l1)) & ((1n << 56n) - 512n));
      const dataOffset = Number((await readU64BE(input, l2 + 20 * 8)) & ((1n << 54n) - 1n));
      await pokeBytes(input, dataOffset, Buffer.alloc(8, 0xfe));
      const bad = await qcow2('convert', '--json', input, temp.file(`bad-${type}.raw`));
      expect(bad.code).toBe(1);
      expect(JSON.parse(bad.stdout.trim().split('\n').at(-1) as string)).toMatchObject({
        code: 'DECOMPRESS_FAILED',
        path: input,
        offset: dataOffset,
        structure: 'compressed cluster',
      });
    }
  });

  it('a corrupt image fails with a typed error and leaves no output behind', async () => {
    const bad = temp.file('bad.qcow2');
    await copyFile(image, bad);
    const l1 = Number(await readU64BE(bad, 40));
    await pokeU64BE(bad, l1, (1n << 63n) | (1n << 40n));
    const out = temp.file('bad.raw');
    const run = await qcow2('convert', '--json', bad, out);
    expect(run.code).toBe(1);
    const error = JSON.parse(run.stdout.trim().split('\n').at(-1) as string);
    expect(error).toMatchObject({ code: 'CORRUPT', structure: 'L1 table entry 0', offset: l1 });
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial`)).toBe(false);
  });
});
