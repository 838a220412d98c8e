import { stat } from 'node:fs/promises';
import { runPeer, sha256File } from '@x/test-utils';
import { expect } from 'vitest';
import { type RepairOptions, type RepairResult, repairImage, undoRepair } from '../../src/index.js';
import { qemuRawHash } from './raw-compare.js';

/** What `qemu-img check` thinks of an image: its error and leak counts, or that it cannot open it. */
export interface QemuVerdict {
  opened: boolean;
  /** corruptions + check-errors (Infinity when qemu-img cannot open the image). */
  errors: number;
  leaks: number;
  stderr: string;
}

export async function qemuVerdict(path: string): Promise<QemuVerdict> {
  const result = await runPeer('qemu-img', ['check', '--output=json', path]);
  try {
    const json = JSON.parse(result.stdout) as Record<string, number | undefined>;
    return {
      opened: true,
      errors: (json.corruptions ?? 0) + (json['check-errors'] ?? 0),
      leaks: json.leaks ?? 0,
      stderr: result.stderr,
    };
  } catch {
    return { opened: false, errors: Number.POSITIVE_INFINITY, leaks: 0, stderr: result.stderr };
  }
}

/** qemu-img convert's bytes of the image (a snapshot with `extra`), or undefined if it cannot. */
export async function guestHash(path: string, extra: string[] = []): Promise<string | undefined> {
  try {
    return await qemuRawHash(path, extra);
  } catch {
    return undefined;
  }
}

export interface JudgedRepair {
  result: RepairResult;
  before: QemuVerdict;
  after: QemuVerdict;
  guestBefore: string | undefined;
  guestAfter: string | undefined;
}

/**
 * Repairs `path` and judges the result with the real qemu-img: its error count
 * never rises; "clean" (exit 0) means qemu-img finds nothing, and leaks remain
 * only where the repair says it kept them. Then `undo` must give back the
 * damaged file byte for byte. Returns what was seen, for case-specific checks.
 */
export async function judgeRepair(
  path: string,
  options: RepairOptions = {},
  { undo = true, label = path }: { undo?: boolean; label?: string } = {},
): Promise<JudgedRepair> {
  const fileBefore = await sha256File(path);
  const sizeBefore = (await stat(path)).size;
  const before = await qemuVerdict(path);
  const guestBefore = await guestHash(path);
  const result = await repairImage(path, options);
  const after = await qemuVerdict(path);
  const guestAfter = await guestHash(path);
  const context = `${label}: qemu-img before ${JSON.stringify(before)}, after ${JSON.stringify(after)}, repair ${JSON.stringify({ exit: result.exitCode, refused: result.refused, notes: result.notes })}`;
  expect(after.errors, context).toBeLessThanOrEqual(before.errors);
  if (result.exitCode === 0) {
    expect(after.errors, context).toBe(0);
    expect(after.leaks, context).toBe(0);
  }
  if (after.leaks > 0) {
    // Leaks left behind are leaks the repair says it kept.
    expect(result.leaksKept, context).toBeGreaterThan(0);
  }
  if (undo && result.undoLog !== undefined) {
    const undone = await undoRepair(path);
    expect(undone.complete, context).toBe(true);
    expect((await stat(path)).size, context).toBe(sizeBefore);
    expect(await sha256File(path), context).toBe(fileBefore);
  } else if (undo) {
    expect(await sha256File(path), context).toBe(fileBefore);
  }
  return { result, before, after, guestBefore, guestAfter };
}
