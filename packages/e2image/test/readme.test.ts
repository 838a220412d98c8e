import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describeReadmeExamples, requirePeer, runPeerOk } from '@x/test-utils';

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

describeReadmeExamples({
  packageRoot: resolve(import.meta.dirname, '..'),
  prepare: makeExampleFiles,
  minimum: 8,
});
