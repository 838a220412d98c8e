// Issue 15 part 3 as a user meets it: what `qcow2 repair` keeps and shares, in text and JSON.
import { copyFile } from 'node:fs/promises';
import { makeTempDir, pokeU64BE, readU64BE, runPeer, sha256File } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2, qemuImage } from './support/cli.js';

const temp = await makeTempDir('qcow2-cli-never-worse-repair-');
afterAll(() => temp.remove());

/** 4 KiB clusters, so the 16 MiB disk has 8 L1 entries; data in the first L2 table only. */
let image: string;
beforeAll(async () => {
  image = await qemuImage('cli-repair-shared', '16M', ['write -P 0xaa 0 64k'], 'cluster_size=4096');
});

let n = 0;
async function copy(poke: (path: string) => Promise<void>): Promise<string> {
  const path = temp.file(`img-${n++}.qcow2`);
  await copyFile(image, path);
  await poke(path);
  return path;
}

const l1Offset = async (path: string) => Number(await readU64BE(path, 40));
const l2Offset = async (path: string) =>
  Number((await readU64BE(path, await l1Offset(path))) & 0x00fffffffffffe00n);

describe('qcow2 repair never makes it worse', () => {
  it('says which leaks it kept and why (text and JSON), frees nothing, and undo restores the bytes', async () => {
    // L2 entry 1 now maps the L1 table: its own data cluster looks leaked, but it is the lost data.
    const path = await copy(async (p) => {
      await pokeU64BE(p, (await l2Offset(p)) + 8, (1n << 63n) | BigInt(await l1Offset(p)));
    });
    const before = await sha256File(path);
    const text = await qcow2('repair', path);
    expect(text.code).toBe(6);
    expect(text.stdout).toMatch(
      /Not repaired: 1 leaked clusters were kept, not freed: there is an entry or table overlapping other metadata \(.*\); they may still belong to data/,
    );
    if (text.stdout.includes('Undo log:')) expect((await qcow2('undo', path)).code).toBe(0);
    expect(await sha256File(path)).toBe(before);

    const json = JSON.parse((await qcow2('repair', '--json', path)).stdout);
    expect(json).toMatchObject({ leaksFixed: 0, leaksKept: 1, exitCode: 6 });
    expect(json.refused).toContainEqual(expect.stringMatching(/^1 leaked clusters were kept/));
    const qemu = await runPeer('qemu-img', ['check', '--output=json', path]);
    expect(JSON.parse(qemu.stdout)).toMatchObject({ leaks: 1 });
  });

  it('names two L1 entries sharing an L2 table and repairs them as qemu-img -r all does', async () => {
    const path = await copy(async (p) => {
      const l1 = await l1Offset(p);
      await pokeU64BE(p, l1 + 3 * 8, await readU64BE(p, l1));
    });
    const before = await sha256File(path);
    const text = await qcow2('repair', path);
    expect(text.stdout).toMatch(
      /Note: active L1 entries 0 and 3 share the L2 table at 0x[0-9a-f]+: it and the clusters it maps are counted once per entry and their COPIED flags cleared/,
    );
    expect(text.stdout).not.toContain('guest data and metadata');
    expect((await runPeer('qemu-img', ['check', path])).code).toBe(0);
    // Our check still reports the sharing: one of the two ranges shows the other's data.
    expect(text.code).toBe(6);
    expect((await qcow2('undo', path)).code).toBe(0);
    expect(await sha256File(path)).toBe(before);
    const json = JSON.parse((await qcow2('repair', '--json', '--dry-run', path)).stdout);
    expect(json.notes).toContainEqual(expect.stringMatching(/^active L1 entries 0 and 3 share/));
  });
});
