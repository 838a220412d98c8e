import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { runPeer } from '@x/test-utils';
import { expect } from 'vitest';
import { qemuImg } from '../support/qemu-fixtures.js';

/** `qemu-img check` must find no errors and no leaks. */
export async function expectClean(image: string): Promise<void> {
  // QEMU 7.2 resolves a relative data file name against the working directory.
  const result = await runPeer('qemu-img', ['check', '--output=json', image], {
    cwd: dirname(image),
  });
  const report = JSON.parse(result.stdout || '{}');
  expect(
    { code: result.code, corruptions: report.corruptions ?? 0, leaks: report.leaks ?? 0 },
    result.stderr,
  ).toEqual({
    code: 0,
    corruptions: 0,
    leaks: 0,
  });
}

/** The guest bytes as qemu-img sees them. */
export async function guestBytes(image: string, raw: string): Promise<Buffer> {
  await qemuImg('convert', '-U', '-O', 'raw', image, raw);
  return readFile(raw);
}

/** Index of the first differing byte, or -1. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const length = Math.max(a.byteLength, b.byteLength);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Our image file equals the one qemu made, byte for byte, and `qemu-img check` finds it clean. */
export async function expectSameImageFile(ours: string, theirs: string): Promise<void> {
  const expected = await readFile(theirs);
  const actual = await readFile(ours);
  expect(actual.byteLength).toBe(expected.byteLength);
  expect(firstDifference(actual, expected)).toBe(-1);
  await expectClean(ours);
}
