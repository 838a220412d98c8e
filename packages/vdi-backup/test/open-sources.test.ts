import { writeFile } from 'node:fs/promises';
import { FileDevice } from '@x/blockio';
import { createQcow2, openQcow2 } from '@x/qcow2';
import { makeTempDir, type TempDir } from '@x/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackup, openBackupSources } from '../src/index.js';
import { collector } from './support/memory.js';

const OBJECT = 64 * 1024;

describe('openBackupSources with two images', () => {
  let temp: TempDir;
  let raw: string;
  let qcow2: string;
  const data = Buffer.alloc(4 * OBJECT, 0x33);
  const changed = Buffer.from(data);
  changed.fill(0x44, OBJECT + 512, OBJECT + 1024);

  beforeAll(async () => {
    temp = await makeTempDir('vdi-open-');
    raw = temp.file('a.raw');
    await writeFile(raw, data);
    qcow2 = temp.file('b.qcow2');
    await createQcow2(qcow2, { size: changed.byteLength });
    const image = await openQcow2(qcow2, { writable: true });
    await image.write(0, changed);
    await image.close();
  });
  afterAll(() => temp.remove());

  const diff = async (from: string, to: string) => {
    const sources = await openBackupSources({ from, to });
    try {
      const sink = collector();
      const result = await createBackup(sources.from, sources.to, {
        output: sink,
        objectSize: OBJECT,
      });
      return { kind: sources.kind, raw: sources.from instanceof FileDevice, result };
    } finally {
      await sources.close();
    }
  };

  it('opens two raw files as files, and QCOW2 files (by their magic) as images, either side', async () => {
    const rawCopy = temp.file('b.raw');
    await writeFile(rawCopy, changed);
    expect(await diff(raw, rawCopy)).toMatchObject({
      kind: 'images',
      raw: true,
      result: { records: 1, dataBytes: 512 },
    });
    // The QCOW2 image is read through its clusters: the same diff as the raw copy's.
    expect(await diff(raw, qcow2)).toMatchObject({
      kind: 'images',
      raw: true,
      result: { records: 1, dataBytes: 512 },
    });
    expect(await diff(qcow2, raw)).toMatchObject({
      kind: 'images',
      raw: false,
      result: { records: 1, dataBytes: 512 },
    });
  });

  it('names the missing file, whichever it is', async () => {
    const missing = temp.file('missing.raw');
    await expect(openBackupSources({ from: missing, to: raw })).rejects.toMatchObject({
      code: 'ENOENT',
      path: missing,
    });
    await expect(openBackupSources({ from: raw, to: missing })).rejects.toMatchObject({
      code: 'ENOENT',
      path: missing,
    });
    await expect(openBackupSources({ from: qcow2, to: missing })).rejects.toMatchObject({
      code: 'ENOENT',
      path: missing,
    });
  });
});
