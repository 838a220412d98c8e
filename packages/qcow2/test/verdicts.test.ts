import { copyFile } from 'node:fs/promises';
import { makeTempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CheckReport, checkImage, type FindingKind } from '../src/index.js';
import {
  type DamageRecipe,
  OVERLAP_RECIPES,
  REFCOUNT_RECIPES,
  SNAPSHOT_TABLE_RECIPES,
} from './support/damage-recipes.js';
import { qemuCheck } from './support/qemu-check.js';
import { qemuImage } from './support/qemu-fixtures.js';
import { ourVerdictClass, qemuVerdictClass } from './support/verdict-class.js';

/*
 * check's verdict class (clean, leaks only, corruptions, cannot open) against
 * qemu-img check's exit code (0, 3, 2, 1) on the damage QEMU's iotests make,
 * each image damaged once and judged by both in the same run. Where qemu-img
 * cannot open the image we may go further (diagnose it: corruptions), never
 * say less. Where qemu-img completes, the leaks and refcount errors are the
 * same clusters with the same values, except where its figures come from
 * reading something as a table that is not one (listed, with why).
 */

const COUNTS_DIFFER: Record<string, string> = {
  'snapshot L1 table size reaching past the end of the file':
    'qemu-img walks the bytes after the L1 table (and zeros past the end of the file) as L1 entries and counts what they point at; we do not walk an L1 table that runs past the end of the file, so the clusters only it references show as leaks',
  'L1 table overlapping the header':
    'qemu-img reads the header as the L1 table and counts cluster 0 twice (one more refcount error); we do not read the header as a table',
  'refcount table overlapping the header':
    'qemu-img reads the header as the refcount table, so its l1_table_offset field becomes a refcount block counted on top of the L1 table; we do not read the header as a table',
  'refcount block past the end of the file':
    'qemu-img reads the refcounts that block holds as 0 and reports every cluster it covers as a refcount error; we report the refcount table entry and leave those refcounts unknown (repair --rebuild-refcounts rebuilds them)',
};

const temp = await makeTempDir('qcow2-verdicts-');
const bases: Record<DamageRecipe['base'], string> = { plain: '', snapshots: '', wide: '' };

beforeAll(async () => {
  bases.plain = await qemuImage('verdicts-plain', {
    size: '64M',
    commands: ['write -P 0xaa 0 1M', 'write -P 0xbb 8M 64k'],
  });
  bases.snapshots = await qemuImage('verdicts-snapshots', {
    size: '64M',
    commands: ['write -P 0xaa 0 1M'],
    snapshots: ['s1', 's2'],
  });
  // Two L1 entries in use (an L2 table maps 512 MiB with 64 KiB clusters).
  bases.wide = await qemuImage('verdicts-wide', {
    size: '2G',
    commands: ['write -P 0xaa 0 256k', 'write -P 0xbb 600M 128k'],
  });
});
afterAll(() => temp.remove());

/** cluster → [refcount, reference] of our findings of one kind, as qemu-img's lines give them. */
function refcountLines(report: CheckReport, kind: FindingKind): Map<number, [number, number]> {
  return new Map(
    report.findings
      .filter((finding) => finding.kind === kind)
      .map((finding) => [
        finding.cluster as number,
        [Number(finding.refcount), finding.reference as number],
      ]),
  );
}

let counter = 0;
describe.each([
  ['snapshot table damage', SNAPSHOT_TABLE_RECIPES],
  ['overlapping metadata', OVERLAP_RECIPES],
  ['refcount structure damage', REFCOUNT_RECIPES],
])('check and qemu-img check agree on %s', (_group, recipes) => {
  it.each(recipes.map((recipe) => [recipe.name, recipe] as const))('%s', async (name, recipe) => {
    const path = temp.file(`verdict-${++counter}.qcow2`);
    await copyFile(bases[recipe.base], path);
    await recipe.poke(path);
    const [peer, ours] = await Promise.all([qemuCheck(path), checkImage(path)]);
    const theirs = qemuVerdictClass(peer.code);
    const why = `qemu-img check exit ${peer.code}: ${peer.stderr.slice(0, 600)}`;
    if (theirs === 'cannot-open') {
      // Going further than qemu-img is fine: we diagnose what it cannot open.
      expect(ourVerdictClass(ours), why).toBe('corruptions');
      return;
    }
    expect(ourVerdictClass(ours), why).toBe(theirs);
    expect(ours.corruptions > 0).toBe(theirs === 'corruptions');
    if (COUNTS_DIFFER[name] !== undefined) return;
    expect(ours.leaks, why).toBe(peer.json?.leaks ?? 0);
    expect(refcountLines(ours, 'leak')).toEqual(peer.leaked);
    expect(refcountLines(ours, 'refcount-error')).toEqual(peer.errors);
  });
});
