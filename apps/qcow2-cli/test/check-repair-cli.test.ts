import { copyFile, stat } from 'node:fs/promises';
import { makeTempDir, pokeU64BE, readU64BE, runPeer, sha256File } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2, qemuImage } from './support/cli.js';

const temp = await makeTempDir('qcow2-cli-');
let pristine: string;
let n = 0;

beforeAll(async () => {
  pristine = await qemuImage('cli-check-base', '64M', ['write -P 0xaa 0 1M']);
});
afterAll(() => temp.remove());

async function copy(poke?: (path: string) => Promise<void>): Promise<string> {
  const path = temp.file(`cli-${n++}.qcow2`);
  await copyFile(pristine, path);
  await poke?.(path);
  return path;
}

/** Clears COPIED on the first L2 table's entry 2. */
async function clearCopied(path: string): Promise<void> {
  const l1 = Number(await readU64BE(path, 40));
  const l2 = Number((await readU64BE(path, l1)) & 0x00fffffffffffe00n);
  await pokeU64BE(path, l2 + 16, (await readU64BE(path, l2 + 16)) & ~(1n << 63n));
}

/** Zeroes the refcount of the first refcount block's cluster 6 (a data cluster). */
async function zeroRefcount(path: string): Promise<void> {
  const table = Number(await readU64BE(path, 48));
  const block = Number(await readU64BE(path, table));
  const { pokeBytes } = await import('@x/test-utils');
  await pokeBytes(path, block + 2 * 6, Buffer.from([0, 0]));
}

describe('qcow2 check', () => {
  it('exits 0 and prints qemu-img figures on a clean image', async () => {
    const result = await qcow2('check', pristine);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('No errors were found on the image.');
    expect(result.stdout).toMatch(
      /16\/1024 = 1\.56% allocated, 0\.00% fragmented, 0\.00% compressed clusters/,
    );
    expect(result.stdout).toContain('Image end offset: 1376256');
  });

  it('--json prints one document with qemu-img keys and our exit code', async () => {
    const path = await copy(clearCopied);
    const result = await qcow2('check', '--json', '--mode', 'error', path);
    expect(result.code).toBe(2);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({
      verdict: 'copied-mismatch',
      exitCode: 2,
      leaks: 0,
      corruptions: 1,
      counts: { copied: 1 },
    });
    expect(report.findings[0]).toMatchObject({
      kind: 'copied',
      entryIndex: 2,
      virtualOffset: 0x20000,
    });
    const qemu = JSON.parse((await runPeer('qemu-img', ['check', '--output=json', path])).stdout);
    for (const key of ['image-end-offset', 'total-clusters', 'allocated-clusters', 'corruptions']) {
      expect(report[key]).toBe(qemu[key]);
    }
  });

  it('--mode error names the entry; refcount errors exit 4', async () => {
    const path = await copy(zeroRefcount);
    const result = await qcow2('check', '--mode', 'error', path);
    expect(result.code).toBe(4);
    expect(result.stdout).toContain('ERROR cluster 6 refcount=0 reference=1');
    expect(result.stdout).toMatch(
      /referenced by active L2 table \(L1 index 0\) entry 1 at 0x40008 \(guest 0x10000\)/,
    );
  });

  it('--mode dump --json streams entries, report last', async () => {
    const result = await qcow2('check', '--mode', 'dump', '--json', pristine);
    expect(result.code).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines.filter((l) => l.event === 'l2-entry')).toHaveLength(16);
    expect(lines.at(-1)).toMatchObject({ event: 'report', verdict: 'clean' });
  });

  it('--mode info reads a header even when the tables are gone', async () => {
    const path = await copy((p) => pokeU64BE(p, 40, 1n << 50n));
    const result = await qcow2('check', '--mode', 'info', '--json', path);
    const facts = JSON.parse(result.stdout);
    expect(facts).toMatchObject({ version: 3, 'cluster-size': 65536, 'virtual-size': 64 << 20 });
    expect(result.code).toBe(6);
  });

  it('64-bit refcounts above 2^53 print exactly: text as qemu-img prints them, JSON as strings', async () => {
    const image = await qemuImage(
      'cli-check-refcount64',
      '64M',
      ['write -P 0xaa 0 1M'],
      'refcount_bits=64',
    );
    const path = temp.file(`cli-${n++}.qcow2`);
    await copyFile(image, path);
    await runPeer('qemu-img', ['snapshot', '-c', 's1', path]);
    // Refcount block 0, entry 5: the first data cluster (shared with s1, so 2 references).
    const table = Number(await readU64BE(path, 48));
    const block = Number(await readU64BE(path, table));
    await pokeU64BE(path, block + 8 * 5, 0x8000000000000001n);
    const peer = await runPeer('qemu-img', ['check', path]);
    expect(peer.code).toBe(3);
    const line = 'Leaked cluster 5 refcount=9223372036854775809 reference=2';
    expect(peer.stderr).toContain(line);
    const text = await qcow2('check', '--mode', 'error', path);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(line);
    const json = await qcow2('check', '--json', path);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout).findings[0]).toMatchObject({
      kind: 'leak',
      refcount: '9223372036854775809',
      reference: 2,
    });
    const dump = await qcow2('dump', '--refcounts', '--json', path);
    expect(JSON.parse(dump.stdout).refcounts[0].runs).toContainEqual({
      firstCluster: 5,
      clusters: 1,
      refcount: '9223372036854775809',
    });
  });

  it('exits 8 when the file is not qcow2, 2 on usage errors', async () => {
    const notQcow2 = temp.file('plain.raw');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(notQcow2, Buffer.alloc(4096, 1));
    const result = await qcow2('check', '--json', notQcow2);
    expect(result.code).toBe(8);
    expect(JSON.parse(result.stdout)).toMatchObject({ code: 'NOT_QCOW2' });
    expect((await qcow2('check', '--mode', 'bogus', pristine)).code).toBe(2);
  });
});

describe('qcow2 repair, undo, set-feature, poke, dump', () => {
  it('repair makes qemu-img happy; undo restores the bytes', async () => {
    const path = await copy(async (p) => {
      await zeroRefcount(p);
      await clearCopied(p);
    });
    const before = await sha256File(path);
    const dry = await qcow2('repair', '--dry-run', path);
    expect(dry.code).toBe(4);
    expect(dry.stdout).toMatch(/Would: raise 1 refcounts/);
    expect(await sha256File(path)).toBe(before);

    const result = await qcow2('repair', '--json', path);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      refcountsFixed: 1,
      copiedFixed: 1,
      exitCode: 0,
    });
    expect((await runPeer('qemu-img', ['check', path])).code).toBe(0);

    const undo = await qcow2('undo', path);
    expect(undo.code).toBe(0);
    expect(await sha256File(path)).toBe(before);
    expect((await qcow2('undo', path)).code).toBe(1);
  });

  it('set-feature clears the corrupt bit', async () => {
    const path = await copy(async (p) => pokeU64BE(p, 72, 2n));
    expect((await qcow2('check', path)).code).toBe(3);
    const result = await qcow2('set-feature', path, '--clear', 'corrupt');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('incompatible_features 0x2 -> 0x0');
    expect((await qcow2('check', path)).code).toBe(0);
    expect((await qcow2('set-feature', path, '--clear', 'lazy')).code).toBe(2);
  });

  it('set-feature and undo refusals name --force, where the library names force: true', async () => {
    const path = await copy(async (p) => {
      await pokeU64BE(p, 72, 1n); // dirty
      await zeroRefcount(p); // and the refcounts really are stale
    });
    const refused = await qcow2('set-feature', '--json', path, '--clear', 'dirty');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/run qcow2 repair first, or use --force\n$/);
    expect(JSON.parse(refused.stdout)).toMatchObject({
      code: 'DIRTY',
      message: expect.stringMatching(/, or use --force$/),
    });
    expect((await qcow2('set-feature', path, '--clear', 'dirty', '--force')).code).toBe(0);

    // Change a byte the set-feature session wrote: undo now refuses.
    await pokeU64BE(path, 72, 2n);
    const undo = await qcow2('undo', path);
    expect(undo.code).toBe(1);
    expect(undo.stderr).toMatch(/\(use --force to undo anyway\)\n$/);
    expect(undo.stderr).not.toContain('force: true');
  });

  it('poke needs --force, writes big-endian, and is undoable', async () => {
    const path = await copy();
    const before = await sha256File(path);
    const dry = await qcow2('poke', path, '--offset', '0x40010', '--value', '0');
    expect(dry.code).toBe(2);
    expect(dry.stdout).toContain('0x8000000000070000 -> 0x0000000000000000');
    expect(await sha256File(path)).toBe(before);
    const poke = await qcow2('poke', path, '--offset', '0x40010', '--value', '0', '--force');
    expect(poke.code).toBe(0);
    expect(await readU64BE(path, 0x40010)).toBe(0n);
    expect((await qcow2('check', path)).code).toBe(1); // the cluster is now leaked
    expect((await qcow2('undo', path)).code).toBe(0);
    expect(await sha256File(path)).toBe(before);
  });

  it('poke: a value wider than --width is a usage error, an offset past the end OUT_OF_RANGE', async () => {
    const path = await copy();
    const before = await sha256File(path);
    const wide = await qcow2('poke', path, '--offset', '0', '--value', '0x1ff', '--width', '1');
    expect(wide.code).toBe(2);
    expect(wide.stderr).toMatch(/--value 0x1ff does not fit --width 1 bytes/);
    const { size } = await stat(path);
    const past = await qcow2('poke', '--json', path, '--offset', String(size - 4), '--value', '1');
    expect(past.code).toBe(1);
    expect(JSON.parse(past.stdout)).toMatchObject({ code: 'OUT_OF_RANGE', path });
    expect(await sha256File(path)).toBe(before);
  });

  it('dump --header-offsets and --json', async () => {
    const text = await qcow2('dump', '--header-offsets', pristine);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/ {2}40 +0x28 \+8 l1TableOffset +0x0000000000030000/);
    const json = JSON.parse(
      (await qcow2('dump', '--json', '--l1', '--l2', '--refcounts', pristine)).stdout,
    );
    expect(json.l1).toEqual([
      expect.objectContaining({ index: 0, l2Offset: 0x40000, copied: true }),
    ]);
    expect(json.l2).toHaveLength(16);
    expect(json.refcounts[0].runs[0]).toEqual({ firstCluster: 0, clusters: 21, refcount: 1 });
  });
});
