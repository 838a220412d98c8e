import { copyFile } from 'node:fs/promises';
import { makeTempDir, runPeerOk } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkImage, createSnapshot, deleteSnapshot } from '../src/index.js';
import { dataCluster, getRefcount64, setRefcount64 } from './support/corrupt.js';
import { qemuCheck } from './support/qemu-check.js';
import { qemuImage } from './support/qemu-fixtures.js';
import { ourVerdictClass, qemuVerdictClass } from './support/verdict-class.js';

/*
 * refcount_bits=64: a refcount with its top bit set, or just above 2^53, is a
 * leak for qemu-img check, printed exactly. Ours must give the same verdict and
 * counts, the exact value (bigint in the library), and writers must count on
 * from it exactly as QEMU does.
 */

const temp = await makeTempDir('qcow2-refcount64-');
let plain: string;
let withSnapshot: string;

beforeAll(async () => {
  const recipe = { size: '64M', options: 'refcount_bits=64', commands: ['write -P 0xaa 0 1M'] };
  plain = await qemuImage('refcount64-plain', recipe);
  withSnapshot = await qemuImage('refcount64-snapshot', { ...recipe, snapshots: ['s1'] });
});
afterAll(() => temp.remove());

let counter = 0;
async function withRefcount(base: string, value: bigint): Promise<[string, number]> {
  const path = temp.file(`refcount64-${++counter}.qcow2`);
  await copyFile(base, path);
  const cluster = await dataCluster(path, 0);
  await setRefcount64(path, cluster, value);
  return [path, cluster];
}

const HUGE: Array<[string, bigint]> = [
  ['0x8000000000000001 (top bit set)', 0x8000000000000001n],
  ['2^53 + 1', 2n ** 53n + 1n],
  ['2^64 - 1', 2n ** 64n - 1n],
];

describe('64-bit refcounts above 2^53 are exact', () => {
  describe.each([
    ['an image', () => plain, 1],
    ['an image with a snapshot', () => withSnapshot, 2],
  ])('in %s', (_name, base, references) => {
    it.each(HUGE)(
      'a refcount of %s: a leak as qemu-img says, with the exact value',
      async (_value, value) => {
        const [path, cluster] = await withRefcount(base(), value);
        const [peer, ours] = await Promise.all([qemuCheck(path), checkImage(path)]);
        expect(ourVerdictClass(ours), peer.stderr).toBe(qemuVerdictClass(peer.code));
        expect(ourVerdictClass(ours)).toBe(references === 1 ? 'corruptions' : 'leaks');
        expect(ours.leaks).toBe(peer.json?.leaks ?? 0);
        expect(ours.corruptions).toBe(peer.json?.corruptions ?? 0);
        const qemuSays = `Leaked cluster ${cluster} refcount=${value} reference=${references}`;
        expect(peer.stderr).toContain(qemuSays);
        const leak = ours.findings.find((finding) => finding.kind === 'leak');
        expect(leak).toMatchObject({ cluster, refcount: value, reference: references });
        expect(leak?.message).toBe(qemuSays);
        if (references === 1) {
          // COPIED is set, so refcount 1 was expected: qemu-img's one error.
          const copied = ours.findings.find((finding) => finding.kind === 'copied');
          expect(copied).toMatchObject({ cluster, refcount: value });
          expect(copied?.message).toContain(`refcount=${value}`);
        }
      },
    );
  });

  it('a refcount of 2^53 - 1 stays a number; 2^53 is exact too', async () => {
    for (const value of [2n ** 53n - 1n, 2n ** 53n]) {
      const [path, cluster] = await withRefcount(withSnapshot, value);
      const leak = (await checkImage(path)).findings.find((finding) => finding.kind === 'leak');
      expect(leak).toMatchObject({ cluster, reference: 2 });
      expect(BigInt(leak?.refcount ?? -1)).toBe(value);
      expect(typeof leak?.refcount).toBe(value > 2n ** 53n - 1n ? 'bigint' : 'number');
    }
  });

  it('snapshot create and delete count on from a huge refcount exactly, as qemu-img does', async () => {
    const value = 0x8000000000000001n;
    const [ours, cluster] = await withRefcount(withSnapshot, value);
    const [theirs] = await withRefcount(withSnapshot, value);
    await createSnapshot(ours, 's2');
    await runPeerOk('qemu-img', ['snapshot', '-c', 's2', theirs]);
    expect(await getRefcount64(ours, cluster)).toBe(value + 1n);
    expect(await getRefcount64(theirs, cluster)).toBe(value + 1n);
    await deleteSnapshot(ours, 's1');
    await runPeerOk('qemu-img', ['snapshot', '-d', 's1', theirs]);
    expect(await getRefcount64(ours, cluster)).toBe(value);
    expect(await getRefcount64(theirs, cluster)).toBe(value);
    const peer = await qemuCheck(ours);
    expect(peer.stderr).toContain(`Leaked cluster ${cluster} refcount=${value} reference=2`);
    expect(peer.json?.leaks).toBe(1);
  });

  it('a refcount one below 2^64 cannot grow: a typed error, the image as it was', async () => {
    const [path, cluster] = await withRefcount(withSnapshot, 2n ** 64n - 1n);
    await expect(createSnapshot(path, 's2')).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      structure: 'refcount block',
      message: expect.stringContaining('2^64 - 1'),
    });
    expect(await getRefcount64(path, cluster)).toBe(2n ** 64n - 1n);
  });
});
