import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, type TempDir } from './temp-dir.js';

/** A fenced ```ts block of a README: an example that the README's test runs. */
export interface ReadmeExample {
  /** 1-based line of the README where the code starts (after the fence). */
  readonly line: number;
  readonly code: string;
}

/**
 * The ```ts blocks of a README, in order. Only blocks tagged exactly `ts` count:
 * tag a block `ts no-run` (or use another language) to show code that is not run.
 */
export function readmeExamples(readmePath: string): ReadmeExample[] {
  const lines = readFileSync(readmePath, 'utf8').split('\n');
  const examples: ReadmeExample[] = [];
  let start = -1;
  let body: string[] = [];
  for (const [index, line] of lines.entries()) {
    if (start < 0) {
      if (/^```ts\s*$/.test(line)) {
        start = index + 2;
        body = [];
      }
    } else if (/^```\s*$/.test(line)) {
      examples.push({ line: start, code: body.join('\n') });
      start = -1;
    } else {
      body.push(line);
    }
  }
  return examples;
}

export interface RunExampleOptions {
  /**
   * A folder inside the package (git-ignored), so that the example's imports of the
   * package's dependencies resolve through its node_modules.
   */
  directory: string;
  /**
   * Import specifiers to point elsewhere, typically the package's own name at its
   * source (`{ '@x/qcow2': '/…/packages/qcow2/src/index.ts' }`): a package cannot
   * import itself by name from its own folder in every resolver.
   */
  imports?: Record<string, string>;
}

/**
 * Writes an example as a module and imports it, so a README's code is run exactly as
 * a reader would paste it. Relative paths in the example are relative to the
 * process's working directory (a test changes into a temporary folder first).
 */
export async function runReadmeExample(
  example: ReadmeExample,
  options: RunExampleOptions,
): Promise<void> {
  let code = example.code;
  for (const [specifier, target] of Object.entries(options.imports ?? {})) {
    code = code.replaceAll(`'${specifier}'`, `'${target}'`);
  }
  mkdirSync(options.directory, { recursive: true });
  const file = join(options.directory, `example-line-${example.line}.ts`);
  writeFileSync(file, `${code}\nexport {};\n`);
  await import(pathToFileURL(file).href);
}

export interface ReadmeSuiteOptions {
  /** The package folder: its README.md is read and its package.json names its entries. */
  packageRoot: string;
  /** Makes the files the examples read, in the temporary folder they run in. */
  prepare?: () => Promise<void>;
  /** Fewer examples than this fails the suite (examples lost in an edit). Default 1. */
  minimum?: number;
}

/**
 * A vitest suite that runs every ```ts example of a package's README, in order, in a
 * fresh temporary working folder. The package's own entries (its name and every
 * subpath in package.json "exports") are pointed at their sources.
 */
export function describeReadmeExamples(options: ReadmeSuiteOptions): void {
  const { packageRoot } = options;
  const examples = readmeExamples(join(packageRoot, 'README.md'));
  const imports = sourceEntries(packageRoot);
  describe('README examples run as written', () => {
    const cwd = process.cwd();
    let temp: TempDir | undefined;
    beforeAll(async () => {
      temp = await makeTempDir('readme-examples-');
      process.chdir(temp.path);
      await options.prepare?.();
    });
    afterAll(async () => {
      process.chdir(cwd);
      await temp?.remove();
    });
    it('the README has its examples', () => {
      expect(examples.length).toBeGreaterThanOrEqual(options.minimum ?? 1);
    });
    it.each(examples.map((example) => [example.line, example] as const))(
      'the example at README line %i',
      async (_line, example) => {
        await runReadmeExample(example, {
          directory: join(packageRoot, 'test', '.readme-examples'),
          imports,
        });
      },
    );
  });
}

/** `{ '@x/pkg': '<root>/src/index.ts', '@x/pkg/read': '<root>/src/read-entry.ts', … }`. */
function sourceEntries(packageRoot: string): Record<string, string> {
  const manifest = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as {
    name: string;
    exports?: Record<string, { default?: string }>;
  };
  const entries: Record<string, string> = {};
  for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
    const built = target.default;
    if (!built?.startsWith('./dist/') || !built.endsWith('.js')) continue;
    const specifier = subpath === '.' ? manifest.name : `${manifest.name}${subpath.slice(1)}`;
    entries[specifier] = join(packageRoot, 'src', `${built.slice(7, -3)}.ts`);
  }
  return entries;
}
