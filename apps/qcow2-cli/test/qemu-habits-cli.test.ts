import { execFile } from 'node:child_process';
import { copyFile, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { filesEqual, makeTempDir, pokeU64BE, readU64BE, runPeerOk } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_ROOT, qcow2 } from './support/cli.js';

const run = promisify(execFile);

const temp = await makeTempDir('qcow2-cli-habits-');
afterAll(() => temp.remove());

/** 8 MiB qcow2: data, a zero cluster, a compressed cluster; snapshot s1; and its raw form. */
let image: string;
let raw: string;

beforeAll(async () => {
  image = temp.file('source.qcow2');
  raw = temp.file('source.raw');
  await runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', image, '8M']);
  await runPeerOk('qemu-io', [
    '-c',
    'write -P 1 0 300k',
    '-c',
    'write -z 1M 64k',
    '-c',
    'write -c -P 3 2M 64k',
    '-c',
    'write -P 4 7M 4k',
    image,
  ]);
  await runPeerOk('qemu-img', ['snapshot', '-c', 's1', image]);
  await runPeerOk('qemu-io', ['-c', 'write -P 5 4M 64k', image]);
  await runPeerOk('qemu-img', ['convert', '-O', 'raw', image, raw]);
});

let n = 0;

describe('convert -O qcow2 -o: the bytes qemu-img convert writes', () => {
  it.each([
    ['compat=0.10'],
    ['cluster_size=4k,refcount_bits=8'],
    ['extended_l2=on,cluster_size=128k'],
    ['preallocation=metadata'],
    ['lazy_refcounts=on'],
    ['compression_type=zstd'],
    ['refcount_bits=1', 'cluster_size=16k'],
  ])('-o %s', async (...options) => {
    for (const source of [image, raw]) {
      const theirs = temp.file(`theirs-${n}.qcow2`);
      const ours = temp.file(`ours-${n++}.qcow2`);
      const flags = options.flatMap((option) => ['-o', option]);
      await runPeerOk('qemu-img', ['convert', '-O', 'qcow2', ...flags, source, theirs]);
      const result = await qcow2('convert', '-O', 'qcow2', ...flags, source, ours);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(await filesEqual(ours, theirs)).toBe(true);
      await runPeerOk('qemu-img', ['check', '-q', ours]);
    }
  });

  it('-c with -o compat=0.10 and 4 KiB clusters', async () => {
    const theirs = temp.file('theirs-c.qcow2');
    const ours = temp.file('ours-c.qcow2');
    const flags = ['-c', '-o', 'compat=0.10,cluster_size=4k'];
    await runPeerOk('qemu-img', ['convert', '-O', 'qcow2', ...flags, image, theirs]);
    expect((await qcow2('convert', '-O', 'qcow2', ...flags, image, ours)).code).toBe(0);
    expect(await filesEqual(ours, theirs)).toBe(true);
  });

  it.each([
    ['64 KiB', 'compression_type=zstd'],
    ['4 KiB', 'compression_type=zstd,cluster_size=4k'],
  ])(
    "-c with compression_type=zstd, %s clusters: qemu-img's bytes, read back by both",
    async (_, options) => {
      const name = options.replace(/[=,]/g, '-');
      const theirs = temp.file(`theirs-${name}.qcow2`);
      const ours = temp.file(`ours-${name}.qcow2`);
      await runPeerOk('qemu-img', ['convert', '-O', 'qcow2', '-c', '-o', options, raw, theirs]);
      expect((await qcow2('convert', '-O', 'qcow2', '-c', '-o', options, raw, ours)).code).toBe(0);
      expect(await filesEqual(ours, theirs)).toBe(true);
      await runPeerOk('qemu-img', ['check', ours]);
      // Decoded by our bin (the bundle's inflate workers) and by qemu-img.
      const back = temp.file(`back-${name}.raw`);
      expect((await qcow2('convert', '-O', 'raw', ours, back)).code).toBe(0);
      expect(await filesEqual(back, raw)).toBe(true);
      const qemuBack = temp.file(`qemu-back-${name}.raw`);
      await runPeerOk('qemu-img', ['convert', '-O', 'raw', ours, qemuBack]);
      expect(await filesEqual(qemuBack, raw)).toBe(true);
    },
  );

  it.each([
    [['-o', 'size=1G'], /not supported by convert/],
    [['-o', 'data_file=x.data'], /not supported by convert/],
    [['-o', 'backing_file=x.qcow2'], /a backing file needs its format/],
    [['-o', 'cluster_size=4k', '--cluster-size', '8k'], /disagree/],
    [['-o', 'bogus=1'], /unknown option/],
  ])('usage errors: %j', async (flags, message) => {
    const result = await qcow2('convert', '-O', 'qcow2', ...flags, image, temp.file('x.qcow2'));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    const rawOut = await qcow2('convert', '-o', 'compat=0.10', image, temp.file('x.raw'));
    expect(rawOut.code).toBe(2);
  });
});

describe("qemu-img's habits", () => {
  it('-f qcow2|raw on info, map and check', async () => {
    const info = JSON.parse((await qcow2('info', '-f', 'raw', '--json', image)).stdout);
    expect(info).toMatchObject({ format: 'raw' });
    const asQcow2 = await qcow2('info', '-f', 'qcow2', '--output=json', raw);
    expect(asQcow2.code).toBe(1);
    expect(asQcow2.stderr).toMatch(/not a qcow2 image/);
    expect((await qcow2('map', '-f', 'qcow2', image)).code).toBe(0);
    const rawMap = JSON.parse((await qcow2('map', '-f', 'raw', '--json', raw)).stdout);
    const qemuRawMap = JSON.parse(
      (await runPeerOk('qemu-img', ['map', '-f', 'raw', '--output=json', raw])).stdout,
    );
    expect(
      rawMap.map(({ filename, compressed, ...rest }: Record<string, unknown>) => rest),
    ).toEqual(qemuRawMap);
    expect((await qcow2('check', '-f', 'qcow2', image)).code).toBe(0);
    const rawCheck = await qcow2('check', '-f', 'raw', raw);
    expect(rawCheck.code).toBe(8);
    expect(rawCheck.stderr).toMatch(/raw image has no metadata to check/);
  });

  it('map --start-offset/--max-length and -s SNAPSHOT, as qemu-img map --output=json', async () => {
    const ours = JSON.parse(
      (await qcow2('map', '--json', '--start-offset', '1M', '--max-length', '2M', image)).stdout,
    );
    const theirs = JSON.parse(
      (
        await runPeerOk('qemu-img', [
          'map',
          '--output=json',
          '--start-offset=1M',
          '--max-length=2M',
          image,
        ])
      ).stdout,
    );
    expect(ours.map(({ filename, compressed, ...rest }: Record<string, unknown>) => rest)).toEqual(
      theirs,
    );
    const snapshot = JSON.parse((await qcow2('map', '--json', '-s', 's1', image)).stdout);
    expect(snapshot.some((entry: { start: number }) => entry.start === 4 << 20)).toBe(false);
  });

  it("map names every file in one style: the image's", async () => {
    const base = temp.file('base.qcow2');
    await runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', base, '4M']);
    await runPeerOk('qemu-io', ['-c', 'write -P 1 0 64k', base]);
    const top = temp.file('top.qcow2');
    await runPeerOk('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      'base.qcow2',
      '-F',
      'qcow2',
      top,
    ]);
    await runPeerOk('qemu-io', ['-c', 'write -P 2 1M 64k', top]);
    const absolute = (await qcow2('map', top)).stdout;
    expect(absolute).toContain(` ${base}`);
    expect(absolute).toContain(` ${top}`);
    const relative = await run(
      process.execPath,
      [join(APP_ROOT, 'bin', 'qcow2.js'), 'map', basename(top)],
      { cwd: dirname(top) },
    );
    expect(relative.stdout).toMatch(/ base\.qcow2\n/);
    expect(relative.stdout).toMatch(/ top\.qcow2\n/);
  });

  it('check -r leaks|all repairs as qcow2 repair does, with its undo log', async () => {
    const leaky = temp.file('leaky.qcow2');
    await copyFile(image, leaky);
    // Drop the first L2 table's entry 2: its cluster keeps refcount 1, a leak.
    const l1 = Number(await readU64BE(leaky, 40));
    const l2 = Number((await readU64BE(leaky, l1)) & 0x00fffffffffffe00n);
    await pokeU64BE(leaky, l2 + 16, 0n);
    const viaRepair = temp.file('leaky-repair.qcow2');
    await copyFile(leaky, viaRepair);
    expect((await qcow2('check', leaky)).code).toBe(1);
    const repaired = await qcow2('check', '-r', 'leaks', leaky);
    expect(repaired.code).toBe(0);
    expect(repaired.stdout).toMatch(/free 1 leaked clusters/);
    expect(repaired.stdout).toMatch(/Undo log: /);
    expect((await qcow2('repair', '--leaks', viaRepair)).code).toBe(0);
    expect(await filesEqual(leaky, viaRepair)).toBe(true);
    await runPeerOk('qemu-img', ['check', '-q', leaky]);
    expect((await qcow2('undo', leaky)).code).toBe(0);
    expect((await qcow2('check', leaky)).code).toBe(1);
    expect((await qcow2('check', '-r', 'all', '--json', leaky)).code).toBe(0);
    expect((await qcow2('check', '-r', 'all', '--mode', 'error', leaky)).code).toBe(2);
  });

  it('dump --header prints every number in decimal and hex, the magic too', async () => {
    const dump = (await qcow2('dump', '--header', image)).stdout;
    expect(dump).toContain('magic: 1363560955 (0x514649fb)');
    expect(dump).toContain('version: 3 (0x3)');
  });

  it("info's snapshot table is laid out as snapshot list and qemu-img lay it out", async () => {
    const info = (await qcow2('info', image)).stdout;
    const list = (await qcow2('snapshot', 'list', image)).stdout;
    const qemu = (await runPeerOk('qemu-img', ['snapshot', '-l', image])).stdout;
    const table = qemu.split('\n').slice(1).join('\n');
    expect(list).toBe(table);
    expect(info).toContain(table);
    expect(await readFile(image)).toBeDefined();
  });
});
