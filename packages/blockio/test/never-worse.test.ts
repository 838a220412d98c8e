// Issue 14: what every tool inherits from @x/blockio so that it never makes things
// worse — private outputs, errors naming the user's output, an output that is its
// own input refused, inputs that are not files refused.
import { execFileSync } from 'node:child_process';
import { link, mkdir, stat, symlink, writeFile } from 'node:fs/promises';
import { makeTempDir, type TempDir } from '@x/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createOutputFile,
  FileDevice,
  refuseSameFile,
  removePartialOutputsSync,
  trackPartialOutput,
  writeFileAtomic,
} from '../src/index.js';

let scratch: TempDir;
let umask: number;
beforeEach(async () => {
  scratch = await makeTempDir('blockio-never-worse-');
  umask = process.umask(0o022);
});
afterEach(async () => {
  process.umask(umask);
  await scratch.remove();
});

describe('outputs that can hold user data are private', () => {
  it('createOutputFile creates mode 0600 (under umask 022), unless told otherwise', async () => {
    const path = scratch.file('image.raw');
    const output = await createOutputFile(path, { size: 4096 });
    expect((await stat(output.partialPath)).mode & 0o777).toBe(0o600);
    await output.commit();
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const shared = scratch.file('report.txt');
    const open = await createOutputFile(shared, { mode: 0o644 });
    await open.commit();
    expect((await stat(shared)).mode & 0o777).toBe(0o644);
  });

  it('FileDevice create and writeFileAtomic create 0600', async () => {
    const device = await FileDevice.open(scratch.file('new.img'), { create: true });
    await device.close();
    expect((await stat(scratch.file('new.img'))).mode & 0o777).toBe(0o600);
    await writeFileAtomic(scratch.file('chunk'), 'data', { ifExists: 'fail' });
    expect((await stat(scratch.file('chunk'))).mode & 0o777).toBe(0o600);
  });
});

describe('errors name the output the user gave, not the temporary file', () => {
  it('a directory that does not exist', async () => {
    const path = scratch.file('nodir/x.raw');
    const refusal = createOutputFile(path);
    await expect(refusal).rejects.toMatchObject({ code: 'ENOENT', path });
    await expect(refusal).rejects.not.toMatchObject({
      message: expect.stringContaining('.partial'),
    });
  });

  it('writes through the device', async () => {
    const path = scratch.file('out.raw');
    const output = await createOutputFile(path);
    expect(output.device.name).toBe(path);
    await output.abort();
  });
});

describe('an output that is the same file as an input', () => {
  it('is refused through the same path, a symbolic link and a hard link', async () => {
    const input = scratch.file('disk.img');
    await writeFile(input, 'precious');
    await symlink(input, scratch.file('soft.img'));
    await link(input, scratch.file('hard.img'));
    for (const output of [input, scratch.file('soft.img'), scratch.file('hard.img')]) {
      await expect(refuseSameFile(output, [input])).rejects.toMatchObject({
        code: 'SAME_FILE',
        path: output,
      });
      await expect(
        createOutputFile(output, { overwrite: true, inputs: [input] }),
      ).rejects.toMatchObject({ code: 'SAME_FILE' });
    }
    await expect(stat(`${input}.partial`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('is not refused for another file, or an output that does not exist yet', async () => {
    const input = scratch.file('disk.img');
    await writeFile(input, 'precious');
    await writeFile(scratch.file('copy.img'), 'precious');
    await refuseSameFile(scratch.file('copy.img'), [input]);
    await refuseSameFile(scratch.file('new.img'), [input]);
    const output = await createOutputFile(scratch.file('copy.img'), {
      overwrite: true,
      inputs: [input],
    });
    await output.abort();
  });
});

describe('inputs that are not regular files or block devices', () => {
  it('a FIFO is refused at once (no wait for a writer), a character device too', async () => {
    const fifo = scratch.file('pipe');
    execFileSync('mkfifo', [fifo]);
    await expect(FileDevice.open(fifo)).rejects.toMatchObject({ code: 'NOT_A_FILE', path: fifo });
    await expect(FileDevice.open('/dev/zero')).rejects.toMatchObject({
      code: 'NOT_A_FILE',
      message: expect.stringContaining('character device'),
    });
    await mkdir(scratch.file('dir'));
    await expect(FileDevice.open(scratch.file('dir'))).rejects.toMatchObject({ code: 'EISDIR' });
  });
});

describe('partial outputs are listed for a synchronous cleanup', () => {
  it('an open output is listed until it is committed or aborted', async () => {
    const path = scratch.file('listed.img');
    const output = await createOutputFile(path);
    const committed = await createOutputFile(scratch.file('done.img'));
    await committed.commit();
    expect(removePartialOutputsSync()).toEqual([output.partialPath]);
    await expect(stat(output.partialPath)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await stat(scratch.file('done.img'))).isFile()).toBe(true);
    await output.abort();
    const untrack = trackPartialOutput(scratch.file('gone'));
    untrack();
    expect(removePartialOutputsSync()).toEqual([]);
  });
});
