import { writeFile } from 'node:fs/promises';
import { makeTempDir, runPeer, runPeerOk } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2 } from './support/cli.js';

/*
 * qcow2 compare [-s] against the real `qemu-img compare` on the same pairs, in
 * the same run: raw and qcow2 on either side, data / zero / unallocated /
 * compressed clusters, the same clusters in another host order, an overlay,
 * and images of different sizes. Strict mode compares the block status
 * answers themselves (data, zero, allocated, host offset known, reaching the
 * end), so a raw hole differs from an unallocated qcow2 cluster but not from a
 * preallocated zero cluster, and two images whose clusters lie in a different
 * host order differ at offset 0: what qemu-img reports, exit code included.
 */

const temp = await makeTempDir('qcow2-cli-compare-strict-');
afterAll(() => temp.remove());

const qemuImg = (...args: string[]) => runPeerOk('qemu-img', args, { cwd: temp.path });
const qemuIo = (image: string, ...commands: string[]) =>
  runPeerOk('qemu-io', [...commands.flatMap((command) => ['-c', command]), temp.file(image)]);

const KiB = 1024;
const CLUSTER = 64 * KiB;

/** 1 MiB of 16 clusters: cluster i holds byte i + 1, except the clusters in `zero`. */
function disk(zero: number[] = [], fill = (i: number) => i + 1): Buffer {
  const bytes = Buffer.alloc(16 * CLUSTER);
  for (let i = 0; i < 16; i++) if (!zero.includes(i)) bytes.fill(fill(i), i * CLUSTER);
  return bytes.subarray(0, 16 * CLUSTER);
}

beforeAll(async () => {
  const holes = [3, 4, 9];
  await writeFile(temp.file('dense.raw'), disk());
  // The same bytes, written zeros (data to SEEK_DATA) and holes.
  await writeFile(temp.file('zeros.raw'), disk(holes));
  await writeFile(temp.file('holes.raw'), disk(holes));
  await runPeerOk('fallocate', ['--dig-holes', temp.file('holes.raw')]);
  const ones = (i: number) => (i >= 0 ? 1 : 0);
  await writeFile(temp.file('ones.raw'), disk(holes, ones));
  await writeFile(temp.file('ones-holes.raw'), disk(holes, ones));
  await runPeerOk('fallocate', ['--dig-holes', temp.file('ones-holes.raw')]);
  await writeFile(temp.file('big.raw'), Buffer.concat([disk(), Buffer.alloc(CLUSTER)]));

  await qemuImg('convert', '-O', 'qcow2', 'dense.raw', 'dense.qcow2');
  await qemuImg('convert', '-O', 'qcow2', 'holes.raw', 'holes.qcow2'); // unallocated 3, 4, 9
  await qemuImg('convert', '-O', 'qcow2', '-c', 'dense.raw', 'compressed.qcow2');
  await qemuImg('convert', '-O', 'qcow2', '-o', 'cluster_size=512', 'dense.raw', 'small.qcow2');
  await qemuImg('convert', '-O', 'qcow2', '-o', 'compat=0.10', 'holes.raw', 'v2.qcow2');
  // The same clusters in reverse host order.
  await qemuImg('create', '-q', '-f', 'qcow2', 'reversed.qcow2', '1M');
  await qemuIo(
    'reversed.qcow2',
    ...Array.from({ length: 16 }, (_, i) => 15 - i).map((i) => `write -P ${i + 1} ${i * 64}k 64k`),
  );
  // Zero clusters that keep their host cluster (zero-alloc), and plain ones.
  await qemuImg('create', '-q', '-f', 'qcow2', 'zero-alloc.qcow2', '1M');
  await qemuIo('zero-alloc.qcow2', 'write -P 1 0 1M', 'write -z 192k 128k', 'write -z 576k 64k');
  await qemuImg('create', '-q', '-f', 'qcow2', 'zero-plain.qcow2', '1M');
  await qemuIo(
    'zero-plain.qcow2',
    'write -P 1 0 192k',
    'write -z -u 192k 128k',
    'write -P 1 320k 256k',
    'write -z 576k 64k',
    'write -P 1 640k 384k',
  );
  // Extended L2: zero and unallocated subclusters.
  await qemuImg('create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', 'extended.qcow2', '1M');
  await qemuIo(
    'extended.qcow2',
    'write -P 1 0 200k',
    'write -P 1 330k 246k',
    'write -P 1 640k 384k',
  );
  // An overlay, over a backing file shorter than itself.
  await qemuImg('create', '-q', '-f', 'qcow2', '-b', 'dense.qcow2', '-F', 'qcow2', 'overlay.qcow2');
  await qemuIo('overlay.qcow2', 'write -P 7 448k 64k');
  await qemuImg('create', '-q', '-f', 'qcow2', 'short.qcow2', '512k');
  await qemuIo('short.qcow2', 'write -P 1 0 512k');
  await qemuImg(
    ...['create', '-q', '-f', 'qcow2', '-b', 'short.qcow2', '-F', 'qcow2'],
    ...['long-overlay.qcow2', '1M'],
  );
  await qemuIo('long-overlay.qcow2', 'write -P 1 512k 64k');
  await qemuImg('create', '-q', '-f', 'qcow2', 'long.qcow2', '1M');
  await qemuIo('long.qcow2', 'write -P 1 0 576k');
  await qemuImg('create', '-q', '-f', 'qcow2', 'bigger.qcow2', '2M');
  await qemuIo('bigger.qcow2', 'write -P 1 0 64k');
});

const PAIRS: Array<[string, string]> = [
  ['dense.raw', 'dense.qcow2'],
  ['dense.qcow2', 'dense.raw'],
  ['holes.raw', 'holes.qcow2'],
  ['holes.raw', 'zeros.raw'],
  ['holes.qcow2', 'v2.qcow2'],
  ['zeros.raw', 'zero-alloc.qcow2'],
  ['dense.qcow2', 'compressed.qcow2'],
  ['dense.raw', 'compressed.qcow2'],
  ['dense.qcow2', 'reversed.qcow2'],
  ['reversed.qcow2', 'dense.raw'],
  ['dense.raw', 'small.qcow2'],
  ['zero-alloc.qcow2', 'ones-holes.raw'],
  ['zero-alloc.qcow2', 'ones.raw'],
  ['zero-plain.qcow2', 'zero-alloc.qcow2'],
  ['zero-plain.qcow2', 'ones-holes.raw'],
  ['extended.qcow2', 'zero-plain.qcow2'],
  ['extended.qcow2', 'ones-holes.raw'],
  ['overlay.qcow2', 'dense.qcow2'],
  ['long-overlay.qcow2', 'long.qcow2'],
  ['dense.raw', 'big.raw'],
  ['big.raw', 'dense.qcow2'],
  ['dense.qcow2', 'bigger.qcow2'],
  ['holes.qcow2', 'big.raw'],
];

describe('qcow2 compare [-s] says what qemu-img compare says, with its exit code', () => {
  for (const [a, b] of PAIRS) {
    for (const strict of [false, true]) {
      const flags = strict ? ['-s'] : [];
      it(`${strict ? '-s ' : ''}${a} ${b}`, async () => {
        const theirs = await runPeer('qemu-img', ['compare', ...flags, a, b], { cwd: temp.path });
        const ours = await qcow2('compare', ...flags, temp.file(a), temp.file(b));
        expect({ code: ours.code, stdout: ours.stdout }).toEqual({
          code: theirs.code,
          stdout: theirs.stdout,
        });
        expect(ours.stderr).toBe('');
      });
    }
  }
});
