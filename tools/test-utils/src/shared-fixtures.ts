import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The directory of one of the project's shared fixtures (`shared/fixtures/<name>`, made
 * by the real peers and read in place, never written). `shared/` lies beside the
 * repository (a clone, CI) or above it (a worktree), so it is searched for upwards
 * from `from`; `BLOCKKIT_SHARED` names it explicitly. A fixture counts as found when
 * its README.md is there. Not found is an error naming where it looked: tests that
 * need the fixture fail loudly, they never skip.
 */
export function sharedFixtureDirectory(name: string, from: string): string {
  const explicit = process.env.BLOCKKIT_SHARED;
  if (explicit !== undefined && explicit !== '') {
    const candidate = join(explicit, 'fixtures', name);
    if (existsSync(join(candidate, 'README.md'))) return candidate;
    throw new Error(`BLOCKKIT_SHARED=${explicit} has no fixtures/${name}/README.md`);
  }
  for (let directory = from; ; directory = dirname(directory)) {
    const candidate = join(directory, 'shared', 'fixtures', name);
    if (existsSync(join(candidate, 'README.md'))) return candidate;
    if (dirname(directory) === directory) {
      throw new Error(
        `no shared/fixtures/${name} in ${from} or any directory above it; set BLOCKKIT_SHARED to the shared/ directory`,
      );
    }
  }
}
