import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

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
