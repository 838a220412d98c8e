import { copyFile } from 'node:fs/promises';
import { filesEqual, makeTempDir, pokeU64BE, readU64BE, runPeerOk } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2, qemuImage } from './support/cli.js';

const temp = await makeTempDir('qcow2-cli-salvage-');
afterAll(() => temp.remove());

let damaged: string;
let expected: string;
beforeAll(async () => {
  const base = await qemuImage('salvage-base', '64M', ['write -P 0xaa 0 1M']);
  damaged = temp.file('damaged.qcow2');
  await copyFile(base, damaged);
  // L2 entry 2 of the first table: a data cluster 256 MiB out, past the end of the file.
  const l1 = Number(await readU64BE(damaged, 40));
  const l2 = Number((await readU64BE(damaged, l1)) & 0x00fffffffffffe00n);
  await pokeU64BE(damaged, l2 + 16, (1n << 63n) | 0x10000000n);
  expected = temp.file('qemu.raw');
  await runPeerOk('qemu-img', ['convert', '-O', 'raw', damaged, expected]);
});

describe('qcow2 convert --salvage', () => {
  it('without it: refused (exit 1), naming the structure and the guest range, no output', async () => {
    const out = temp.file('refused.raw');
    const run = await qcow2('convert', damaged, out);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /L2 table at 0x[0-9a-f]+ entry 2.*guest bytes 0x20000\.\.0x30000.*--salvage/,
    );
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it("with it: qemu-img convert's bytes, and the zero-filled range on stderr", async () => {
    const out = temp.file('salvaged.raw');
    const run = await qcow2('convert', '--salvage', damaged, out);
    expect(run.code, run.stderr).toBe(0);
    expect(await filesEqual(out, expected)).toBe(true);
    expect(run.stderr).toMatch(/65536 guest bytes are not the image's data \(1 range\)/);
    expect(run.stderr).toMatch(
      /guest 0x20000\.\.0x30000 \(65536 bytes\): data at host 0x10000000 lies past the end of the file .*written as zeros/,
    );
  });

  it('--json: the ranges in the result object', async () => {
    const out = temp.file('salvaged-json.raw');
    const run = await qcow2('convert', '--salvage', '--json', damaged, out);
    expect(run.code, run.stderr).toBe(0);
    const done = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((event) => event.event === 'done');
    expect(done?.salvaged).toEqual({
      ranges: [
        {
          guestOffset: 0x20000,
          length: 0x10000,
          reason: 'data-past-end',
          structure: expect.stringMatching(/^L2 table at 0x[0-9a-f]+ entry 2$/),
          hostOffset: 0x10000000,
          path: damaged,
          readsAs: 'zeros',
        },
      ],
      totalBytes: 0x10000,
      truncated: false,
    });
    expect(await filesEqual(out, expected)).toBe(true);
  });
});
