import { copyFile, readFile, stat, writeFile } from 'node:fs/promises';
import {
  filesEqual,
  makeTempDir,
  runPeerOk,
  runWithClosedReader,
  type TempDir,
} from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildFixture,
  type Fixture,
  MATRIX,
} from '../../../packages/e2image/test/support/fixtures.js';
import { BIN, run } from './support/run-cli.js';

let temp: TempDir;
let fixture: Fixture;
beforeAll(async () => {
  temp = await makeTempDir('e2image-cli-');
  fixture = await buildFixture(
    MATRIX.find((recipe) => recipe.name === 'ext4-meta_bg') as (typeof MATRIX)[number],
  );
});
afterAll(async () => {
  await temp.remove();
});

describe('x-e2image', () => {
  it('-r writes e2fsprogs’ bytes and exits 0', async () => {
    const out = temp.file('r.raw');
    const result = await run(['-r', fixture.image, out]);
    expect(result.code).toBe(0);
    expect(await filesEqual(out, fixture.peerRaw)).toBe(true);
  });

  it('-rs scrambles like e2fsprogs', async () => {
    const out = temp.file('rs.raw');
    expect((await run(['-rs', fixture.image, out])).code).toBe(0);
    expect(await filesEqual(out, fixture.peerScrambled)).toBe(true);
  });

  it('"-" into a reader that goes away (| head -c 1): exit 141, no stack trace, no hang', async () => {
    const result = await runWithClosedReader(BIN, ['-r', fixture.image, '-']);
    expect(result.bytesSeen).toBeGreaterThan(0);
    expect(result.stderr).not.toMatch(/\n\s+at |Unhandled|EPIPE/);
    expect(result.code).toBe(141);
  });

  it('"-" streams the raw image to stdout', async () => {
    const result = await run(['-r', fixture.image, '-']);
    expect(result.code).toBe(0);
    expect(result.stdout.equals(await readFile(fixture.peerRaw))).toBe(true);
  });

  it('--json prints JSON Lines: progress events, then a summary', async () => {
    const result = await run(['-r', '--json', fixture.image, temp.file('json.raw')]);
    expect(result.code).toBe(0);
    const lines = result.stdout
      .toString()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const summary = lines.at(-1);
    expect(summary).toMatchObject({ event: 'summary', mode: 'raw', blockSize: 1024, warnings: 0 });
    expect(summary.blocks).toBeGreaterThan(0);
    expect(lines.slice(0, -1).every((line) => line.event === 'progress')).toBe(true);
  });

  it('-Q writes a QCOW2 image qemu-img check accepts and e2fsprogs reads back', async () => {
    const out = temp.file('q.qcow2');
    const result = await run(['-Q', '--json', fixture.image, out]);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout.toString().trim().split('\n').at(-1) as string);
    expect(summary).toMatchObject({ event: 'summary', mode: 'qcow2' });
    expect(summary.fileSize).toBeGreaterThan(0);
    await runPeerOk('qemu-img', ['check', out]);
    const back = temp.file('q-back.raw');
    await runPeerOk('e2image', ['-r', out, back]);
    expect(await filesEqual(back, fixture.peerRaw)).toBe(true);
  });

  it('normal image and -I round trip', async () => {
    const image = temp.file('n.e2i');
    expect((await run([fixture.image, image])).code).toBe(0);
    const target = temp.file('installed.img');
    await copyFile(fixture.image, target);
    const result = await run(['-I', target, image]);
    expect(result.code, result.stderr).toBe(0);
    await runPeerOk('e2fsck', ['-fn', target]);
  });

  it('-rn lists the blocks e2fsprogs would write and writes nothing', async () => {
    const out = temp.file('dry.raw');
    const theirs = await runPeerOk('e2image', ['-rn', fixture.image, temp.file('dry-theirs.raw')]);
    const result = await run(['-rn', fixture.image, out]);
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toBe(theirs.stdout);
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('-rc on an up-to-date copy skips every block, like e2fsprogs', async () => {
    const ours = temp.file('c-ours.raw');
    const theirs = temp.file('c-theirs.raw');
    await copyFile(fixture.peerRaw, ours);
    await copyFile(fixture.peerRaw, theirs);
    const expected = await runPeerOk('e2image', ['-rc', fixture.image, theirs]);
    const result = await run(['-rc', fixture.image, ours]);
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toBe(expected.stdout);
    expect(await filesEqual(ours, theirs)).toBe(true);
  });

  it('-ra -O writes into an existing disk image in place, like e2fsprogs', async () => {
    const disk = Buffer.alloc(3 << 20, 0x5a);
    const ours = temp.file('disk-ours.img');
    const theirs = temp.file('disk-theirs.img');
    await writeFile(ours, disk);
    await writeFile(theirs, disk);
    await runPeerOk('e2image', ['-ra', '-O', '1048576', fixture.image, theirs]);
    expect((await run(['-ra', '-O', '1048576', fixture.image, ours])).code).toBe(0);
    expect(await filesEqual(ours, theirs)).toBe(true);
  });

  it('-o reads a filesystem at an offset', async () => {
    const disk = temp.file('prefixed.img');
    await writeFile(
      disk,
      Buffer.concat([Buffer.alloc(1 << 20, 0x11), await readFile(fixture.image)]),
    );
    const out = temp.file('o.raw');
    expect((await run(['-r', '-o', '1M', disk, out])).code).toBe(0);
    expect(await filesEqual(out, fixture.peerRaw)).toBe(true);
  });

  it('move mode (-ra -O on one file) moves the filesystem like e2fsprogs', async () => {
    const ours = temp.file('move-ours.img');
    const theirs = temp.file('move-theirs.img');
    await copyFile(fixture.image, ours);
    await copyFile(fixture.image, theirs);
    await runPeerOk('e2image', ['-ra', '-O', '1048576', theirs]);
    expect((await run(['-ra', '-O', '1048576', ours])).code).toBe(0);
    const [a, b] = await Promise.all([readFile(ours), readFile(theirs)]);
    // e2image leaves the file short when the moved filesystem ends in free blocks; we extend it.
    expect(a.length).toBe((await stat(fixture.image)).size + (1 << 20));
    expect(a.subarray(0, b.length).equals(b)).toBe(true);
    const moved = temp.file('moved-fs.img');
    await writeFile(moved, a.subarray(1 << 20));
    await runPeerOk('e2fsck', ['-fn', moved]);
  });

  it('QCOW2 sources: -r converts, -rs reads the filesystem inside, "-" streams the conversion', async () => {
    const e2imageQcow2 = temp.file('e2image.qcow2');
    await runPeerOk('e2image', ['-Q', fixture.image, e2imageQcow2]);
    const converted = temp.file('converted.raw');
    expect((await run(['-r', e2imageQcow2, converted])).code).toBe(0);
    expect(await filesEqual(converted, fixture.peerRaw)).toBe(true);
    const streamed = await run(['-r', e2imageQcow2, '-']);
    expect(streamed.stdout.equals(await readFile(fixture.peerRaw))).toBe(true);
    const full = temp.file('full.qcow2');
    await runPeerOk('qemu-img', ['convert', '-O', 'qcow2', fixture.image, full]);
    const scrambled = temp.file('inside-s.raw');
    expect((await run(['-rs', full, scrambled])).code).toBe(0);
    expect(await filesEqual(scrambled, fixture.peerScrambled)).toBe(true);
    // An explicit -o 0 is an offset given: the filesystem inside, not a conversion.
    const inside = temp.file('inside-o0.raw');
    expect((await run(['-r', '-o', '0', full, inside])).code).toBe(0);
    expect(await filesEqual(inside, fixture.peerRaw)).toBe(true);
    const normal = temp.file('inside.e2i');
    expect((await run([full, normal])).code).toBe(0);
    await runPeerOk('dumpe2fs', ['-i', normal]);
  });

  it.each([
    [['-a', 'src', 'out'], '-a option can only be used with raw or QCOW2 images.'],
    [['-r', '-Q', 'src', 'out'], '-r and -Q cannot be combined'],
    [['-Q', 'src', '-'], 'QCOW2 image can not be written to the stdout!'],
    [['-rc', 'src', '-'], 'The -c option not supported when writing to stdout'],
    [['-Q', '-o', '4096', 'src', 'out'], 'Offsets are only allowed with raw images.'],
    [['-r', '-O', '4096', 'src'], 'Move mode requires all data mode.'],
    [['-r', '-b', '8193', 'src', 'out'], '-b needs -B'],
    [['-I', '-r', 'dev', 'img'], 'Raw and qcow2 images cannot be installed'],
    [['src'], 'expected a source and an image file'],
  ])('usage error %j exits 2', async (args, message) => {
    const result = await run(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
  });

  it('a missing source or a non-filesystem exits 1 with a typed error', async () => {
    const missing = await run(['-r', temp.file('nope.img'), temp.file('out.raw')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no such file');
    const junk = temp.file('junk.img');
    await writeFile(junk, Buffer.alloc(1 << 20, 0x41));
    const result = await run(['-r', '--json', junk, temp.file('junk.raw')]);
    expect(result.code).toBe(1);
    const error = JSON.parse(result.stdout.toString().trim().split('\n').at(-1) as string);
    expect(error).toMatchObject({ code: 'BAD_MAGIC', error: 'E2imageError' });
    await expect(stat(temp.file('junk.raw'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(temp.file('junk.raw.partial'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('--help shows examples', async () => {
    const result = await run(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toContain('Examples:');
    expect(result.stdout.toString()).toContain('-b <superblock>');
  });
});
