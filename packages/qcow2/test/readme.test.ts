import { join, resolve } from 'node:path';
import { makeTempDir, readmeExamples, runReadmeExample } from '@x/test-utils';
import { afterAll, beforeAll, describe, it } from 'vitest';

const packageRoot = resolve(import.meta.dirname, '..');
const examples = readmeExamples(join(packageRoot, 'README.md'));
const source = (file: string) => join(packageRoot, 'src', file);

describe('README examples run as written', () => {
  const cwd = process.cwd();
  let temp: Awaited<ReturnType<typeof makeTempDir>>;
  beforeAll(async () => {
    temp = await makeTempDir('qcow2-readme-');
    process.chdir(temp.path);
  });
  afterAll(async () => {
    process.chdir(cwd);
    await temp.remove();
  });
  it.each(examples.map((example) => [example.line, example] as const))(
    'the example at README line %i',
    async (_line, example) => {
      await runReadmeExample(example, {
        directory: join(packageRoot, 'test', '.readme-examples'),
        imports: {
          '@x/qcow2': source('index.ts'),
          '@x/qcow2/read': source('read-entry.ts'),
          '@x/qcow2/diagnosis': source('diagnosis.ts'),
          '@x/qcow2/convert': source('convert-entry.ts'),
          '@x/qcow2/sequential': source('sequential-entry.ts'),
        },
      });
    },
  );
});
