import { buildFixture, MATRIX } from './fixtures.js';

/**
 * Builds the whole fixture matrix once, before any test file runs. Built lazily inside
 * tests, a fixture's mke2fs + debugfs + e2fsck + four e2image runs counted against the
 * test's timeout, and on a loaded two-core machine several workers building at once
 * made them time out. Cached fixtures make this a few stat calls.
 */
export default async function setup(): Promise<void> {
  for (const recipe of MATRIX) await buildFixture(recipe);
}
