import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { decodeBlob } from '../../src/index.js';

/** The manifest's JSON with `unprotected.verify_state` dropped (what a restore keeps). */
export async function manifestJson(dir: string): Promise<Record<string, unknown>> {
  const json = JSON.parse(
    (await decodeBlob(await readFile(join(dir, 'index.json.blob')), {})).toString('utf8'),
  );
  if (json.unprotected) delete json.unprotected.verify_state;
  return json;
}

/**
 * A restored snapshot directory equals the original: same file names, every file
 * byte for byte except the manifest, compared as parsed JSON without verify_state.
 */
export async function expectSameSnapshot(original: string, restored: string): Promise<void> {
  const names = (await readdir(original)).sort();
  expect((await readdir(restored)).sort()).toEqual(names);
  for (const name of names) {
    if (name === 'index.json.blob') continue;
    const same = (await readFile(join(original, name))).equals(
      await readFile(join(restored, name)),
    );
    expect(same, `${name} differs`).toBe(true);
  }
  expect(await manifestJson(restored)).toEqual(await manifestJson(original));
}
