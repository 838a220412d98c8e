// The brief promises Node 20.19+, 22 and 24, and this machine (like CI) runs 20. Here
// the other two majors are fetched from the npm registry (the `node-<os>-<arch>` package
// holds the official binary; cached under .fixtures/) and the whole demo — every
// bundled CLI on its sample data — runs on each. Node 22.15+ also has zstd in
// node:zlib, which @x/qcow2 then uses instead of its WebAssembly libzstd: a zstd image
// made by qemu-img is converted on each major and compared with qemu-img's output.
// A registry that cannot be reached is a failure, as a missing peer is, never a skip.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedFixture, requirePeer } from '@x/test-utils';
import { afterAll, describe, expect, test } from 'vitest';

const demo = join(dirname(fileURLToPath(import.meta.url)), '..');
const root = join(demo, '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'blockkit-node-versions-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The `node` binary of the newest release of `major`, fetched once and cached. */
async function nodeRelease(major) {
  const name = `node-${process.platform}-${process.arch}`;
  const directory = await cachedFixture(demo, `node-${major}`, `${name}@${major}`, async (into) => {
    const pack = spawnSync('npm', ['pack', `${name}@${major}`, '--pack-destination', into], {
      encoding: 'utf8',
    });
    if (pack.status !== 0) {
      throw new Error(
        `could not fetch Node ${major} (npm pack ${name}@${major}): ${pack.error?.message ?? pack.stderr.trim()}`,
      );
    }
    const tarball = join(into, pack.stdout.trim().split('\n').pop());
    execFileSync('tar', ['-xzf', tarball, '-C', into]);
    rmSync(tarball);
  });
  return join(directory, 'package', 'bin', 'node');
}

function run(node, args) {
  return spawnSync(node, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
}

// One after the other: the demo runs in the repository's demo-output/.
describe.sequential.each([22, 24])('Node %i', (major) => {
  /** The binary (cached after the first test fetched it). */
  let fetched;
  const binary = async () => {
    fetched ??= await nodeRelease(major);
    return fetched;
  };

  test('is fetched and runs', { timeout: 300_000 }, async () => {
    expect(run(await binary(), ['-p', 'process.versions.node.split(".")[0]']).stdout.trim()).toBe(
      String(major),
    );
  });

  test('pnpm demo: every tool on its sample data', { timeout: 300_000 }, async () => {
    const node = await binary();
    const demoRun = run(node, [join(demo, 'run.mjs')]);
    expect(demoRun.stdout + demoRun.stderr).toMatch(/demo: \d+ step\(s\) done/);
    expect(demoRun.status).toBe(0);
  });

  test('every CLI: --help on stdout, nothing on stderr', { timeout: 60_000 }, async () => {
    const node = await binary();
    const apps = join(root, 'apps');
    const bins = readdirSync(apps).flatMap((app) =>
      readdirSync(join(apps, app, 'bin'))
        .filter((file) => file.endsWith('.js'))
        .map((file) => join(apps, app, 'bin', file)),
    );
    expect(bins.length).toBeGreaterThanOrEqual(5);
    for (const bin of bins) {
      const help = run(node, [bin, '--help']);
      expect({ bin, stderr: help.stderr, status: help.status }).toEqual({
        bin,
        stderr: '',
        status: 0,
      });
      expect(help.stdout).toMatch(/Usage:/);
    }
  });

  test("@x/qcow2's zstd decoder tests (node:zlib's zstd here)", { timeout: 300_000 }, async () => {
    const node = await binary();
    // A clean environment: this process's VITEST_* variables would steer the inner run.
    const env = {
      ...Object.fromEntries(
        Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST')),
      ),
      NO_COLOR: '1',
      FORCE_COLOR: '0',
    };
    const inner = spawnSync(
      node,
      [
        join(root, 'node_modules', 'vitest', 'vitest.mjs'),
        'run',
        '--project',
        'qcow2',
        'test/raw-inflater.test.ts',
        'test/read-bad-input.test.ts',
      ],
      { cwd: root, encoding: 'utf8', env, maxBuffer: 64 << 20 },
    );
    expect(inner.stdout + inner.stderr).toMatch(/Tests +\d+ passed \(\d+\)/);
    expect(inner.status).toBe(0);
  });

  test('qcow2 convert of a zstd image made by qemu-img equals qemu-img convert', {
    timeout: 120_000,
  }, async () => {
    const node = await binary();
    const qemuImg = requirePeer('qemu-img');
    const directory = mkdtempSync(join(scratch, `zstd-${major}-`));
    const source = join(directory, 'source.raw');
    // Compressible text and incompressible runs (stored raw), 4 MiB.
    const data = Buffer.alloc(4 << 20);
    for (let offset = 0; offset < data.length; offset += 64 << 10) {
      if ((offset >> 16) % 3 === 0) data.fill(`cluster ${offset} `, offset, offset + (64 << 10));
      else if ((offset >> 16) % 3 === 1)
        for (let i = offset; i < offset + (64 << 10); i++) data[i] = (i * 2654435761) >>> 24;
    }
    writeFileSync(source, data);
    const image = join(directory, 'zstd.qcow2');
    execFileSync(qemuImg, [
      'convert',
      '-c',
      '-O',
      'qcow2',
      '-o',
      'compression_type=zstd',
      source,
      image,
    ]);
    const theirs = join(directory, 'theirs.raw');
    const ours = join(directory, 'ours.raw');
    execFileSync(qemuImg, ['convert', '-O', 'raw', image, theirs]);
    const convert = run(node, [
      join(root, 'apps', 'qcow2-cli', 'bin', 'qcow2.js'),
      'convert',
      '-O',
      'raw',
      image,
      ours,
    ]);
    expect(convert.stderr).toBe('');
    expect(convert.status).toBe(0);
    expect(readFileSync(ours).equals(readFileSync(theirs))).toBe(true);
    expect(readFileSync(ours).equals(data)).toBe(true);
  });
});
