import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  makeTempDir,
  readmeExamples,
  requirePeer,
  runPeerOk,
  runReadmeExample,
  type TempDir,
} from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const packageRoot = resolve(import.meta.dirname, '..');
const examples = readmeExamples(join(packageRoot, 'README.md'));

/**
 * The files the README's "The files the examples use" section describes, made the
 * same way by the real tools, so that the examples read a filesystem mke2fs wrote.
 * data.bin holds the pattern `i % 251` the examples check instead of random bytes.
 */
async function makeExampleFiles(): Promise<void> {
  for (const peer of ['mke2fs', 'debugfs', 'qemu-img']) requirePeer(peer);
  await mkdir(join('tree', 'docs'), { recursive: true });
  await writeFile(join('tree', 'docs', 'readme.txt'), 'hello from ext4\n');
  await writeFile(join('tree', 'docs', 'notes.txt'), 'second file\n');
  const data = Buffer.alloc(100_000);
  for (let i = 0; i < data.length; i++) data[i] = i % 251;
  await writeFile(join('tree', 'data.bin'), data);
  await symlink('docs/readme.txt', join('tree', 'latest'));
  await runPeerOk('mke2fs', ['-q', '-t', 'ext4', '-b', '1024', '-d', 'tree', 'fs.img', '32M']);
  await runPeerOk('debugfs', ['-w', '-R', 'ea_set /docs/readme.txt user.comment hello', 'fs.img']);
  await runPeerOk('qemu-img', ['convert', '-O', 'qcow2', 'fs.img', 'fs.qcow2']);
}

describe('README examples run as written', () => {
  const cwd = process.cwd();
  let temp: TempDir;
  beforeAll(async () => {
    temp = await makeTempDir('e2image-readme-');
    process.chdir(temp.path);
    await makeExampleFiles();
  });
  afterAll(async () => {
    process.chdir(cwd);
    await temp.remove();
  });
  it('the README has its examples', () => {
    expect(examples.length).toBeGreaterThanOrEqual(8);
  });
  it.each(examples.map((example) => [example.line, example] as const))(
    'the example at README line %i',
    async (_line, example) => {
      await runReadmeExample(example, {
        directory: join(packageRoot, 'test', '.readme-examples'),
        imports: { '@x/e2image': join(packageRoot, 'src', 'index.ts') },
      });
    },
  );
});
