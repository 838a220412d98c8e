import { copyFile } from 'node:fs/promises';
import { filesEqual, makeTempDir, runPeerOk } from '@x/test-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { qcow2 } from './support/cli.js';

const temp = await makeTempDir('qcow2-cli-resize-');
afterAll(() => temp.remove());
let n = 0;

/** A qemu-made 64 MiB image with data in its first MiB and at 40 MiB, and a copy. */
async function pair(): Promise<[string, string]> {
  const theirs = temp.file(`theirs-${n}.qcow2`);
  const ours = temp.file(`ours-${n++}.qcow2`);
  await runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', theirs, '64M']);
  await runPeerOk('qemu-io', ['-c', 'write -P 1 0 1M', '-c', 'write -P 2 40M 1M', theirs]);
  await copyFile(theirs, ours);
  return [ours, theirs];
}

const virtualSize = async (path: string) =>
  JSON.parse((await runPeerOk('qemu-img', ['info', '--output=json', path])).stdout)['virtual-size'];

describe('qcow2 resize', () => {
  it.each([
    [['+1G'], 'grows by a relative size'],
    [['--preallocation', 'metadata', '200M'], 'grows with metadata preallocation'],
    [['--shrink', '-30M'], 'shrinks by a relative size with --shrink'],
    [['--shrink', '8M'], 'shrinks to an absolute size with --shrink'],
  ])('%j: %s, as qemu-img resize does', async (args, _what) => {
    const [ours, theirs] = await pair();
    const qemuArgs = args;
    const preallocation = qemuArgs[0] === '--preallocation';
    await runPeerOk('qemu-img', [
      'resize',
      '-q',
      ...(preallocation ? ['--preallocation=metadata'] : qemuArgs.slice(0, -1)),
      theirs,
      '--',
      qemuArgs.at(-1) as string,
    ]);
    const result = await qcow2('resize', ours, ...args);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('Image resized.\n');
    expect(await filesEqual(ours, theirs)).toBe(true);
    await runPeerOk('qemu-img', ['check', '-q', ours]);
  });

  it('shrinks without --shrink when only zeros would go; refuses with exit 1 otherwise', async () => {
    const [ours] = await pair();
    const refused = await qcow2('resize', ours, '32M');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/WOULD_LOSE_DATA|holds data at guest offset 41943040/);
    expect(refused.stderr).toMatch(/use --shrink/);
    expect(await virtualSize(ours)).toBe(64 << 20);
    const done = await qcow2('resize', '--json', ours, '-23M');
    expect(done.code).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({
      filename: ours,
      'old-size': 64 << 20,
      'new-size': 41 << 20,
    });
    expect(await virtualSize(ours)).toBe(41 << 20);
  });

  it('errors: a negative result is a usage error, a size off 512 a failure', async () => {
    const [ours] = await pair();
    const negative = await qcow2('resize', ours, '-1G');
    expect(negative.code).toBe(2);
    expect(negative.stderr).toMatch(/negative/);
    const odd = await qcow2('resize', '--json', ours, '+1000');
    expect(odd.code).toBe(1);
    expect(JSON.parse(odd.stdout)).toMatchObject({ code: 'INVALID_ARGUMENT' });
    const raw = temp.file('raw.img');
    await runPeerOk('qemu-img', ['create', '-q', '-f', 'raw', raw, '1M']);
    const notQcow2 = await qcow2('resize', raw, '2M');
    expect(notQcow2.code).toBe(1);
    expect(notQcow2.stderr).toMatch(/not a qcow2 image/);
  });
});
