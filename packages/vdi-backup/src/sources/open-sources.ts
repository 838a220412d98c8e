import type { BlockDevice, FileDevice } from '@x/blockio';
import type { BackingPolicy } from '@x/qcow2/read';
import { VdiBackupError } from '../errors.js';
import type { OpenedSources } from './opened-sources.js';
import { qcow2HostFiles } from './qcow2-host-files.js';
import { qcow2SharedRanges } from './qcow2-shared.js';

/**
 * What `vdi-backup create` compares, as the command line names it:
 * - no `source`: `from` and `to` are two image files (raw, or QCOW2 by its magic);
 * - `source` a QCOW2 image: `from` and `to` name its internal snapshots (id if all
 *   digits, else name), `to` absent for the active layer;
 * - `source` a `sheepdog://host:port/vdi` URL: `from` and `to` are snapshot ids or tags.
 */
export interface SourceSpec {
  from: string;
  to?: string | undefined;
  source?: string | undefined;
  /** Backing files of QCOW2 images: followed by default, as qemu-img does. */
  backingPolicy?: BackingPolicy | undefined;
}

/** Opens the two sides of a backup read-only. */
export async function openBackupSources(spec: SourceSpec): Promise<OpenedSources> {
  const backingPolicy = spec.backingPolicy ?? 'allow';
  if (spec.source === undefined) {
    if (spec.to === undefined) {
      throw new VdiBackupError(
        'INVALID_ARGUMENT',
        'two images are needed: the "from" image and the "to" image',
      );
    }
    const raw = await openRawImages(spec.from, spec.to);
    if (raw !== undefined) return raw;
    const from = await openImage(spec.from, backingPolicy);
    try {
      const to = await openImage(spec.to, backingPolicy);
      return { kind: 'images', from, to, close: () => closeBoth(from, to) };
    } catch (error) {
      await from.close();
      throw error;
    }
  }
  if (spec.source.startsWith('sheepdog://')) {
    const { openSheepdogSources } = await import('../sheepdog/sheepdog-sources.js');
    return openSheepdogSources(spec.source, spec.from, spec.to);
  }
  // QCOW2 code is loaded only for QCOW2 sources: two raw images need none of it.
  const { detectFormat, openQcow2 } = await import('@x/qcow2/read');
  if ((await detectFormat(spec.source)) !== 'qcow2') {
    throw new VdiBackupError(
      'INVALID_ARGUMENT',
      'the source is neither a QCOW2 image nor a sheepdog:// URL; for two raw images give them as -F and -s without a source',
      { path: spec.source },
    );
  }
  // The changed clusters are compared on worker threads that pread the image file at
  // their host offsets (hostFiles), as two raw images are; objects with compressed
  // clusters or backing-file data are read through the views on the thread pool, a
  // megabyte at a time (measured 1.7x faster than synchronous reads of whole objects
  // on a loaded machine; bench/bench.mjs, create-qcow2).
  const from = await openQcow2(spec.source, { snapshot: spec.from, backingPolicy, io: 'async' });
  try {
    const to = await openQcow2(spec.source, { snapshot: spec.to, backingPolicy, io: 'async' });
    return {
      kind: 'qcow2-snapshots',
      from,
      to,
      readSize: QCOW2_READ_SIZE,
      sharedRanges: qcow2SharedRanges(from, to),
      hostFiles: qcow2HostFiles(from, to),
      close: () => closeBoth(from, to),
    };
  } catch (error) {
    await from.close();
    throw error;
  }
}

async function openImage(path: string, backingPolicy: BackingPolicy): Promise<BlockDevice> {
  const { detectFormat, openQcow2 } = await import('@x/qcow2/read');
  if ((await detectFormat(path)) === 'qcow2') return openQcow2(path, { backingPolicy });
  const { FileDevice } = await import('@x/blockio');
  return FileDevice.open(path);
}

/**
 * Two raw images: createBackup compares files of 64 MiB and more on worker threads
 * that pread both directly (FileScanner), one per core; smaller ones, or on one core,
 * on this thread in 64 KiB pieces. Either way the reads are synchronous preads into
 * buffers that stay in the CPU cache, which costs the kernel about what `cat` pays;
 * reading on libuv's pool into megabyte buffers cost half as much again in system time
 * (bench/bench.mjs, create-raw).
 */
async function openRawImages(fromPath: string, toPath: string): Promise<OpenedSources | undefined> {
  const { FileDevice } = await import('@x/blockio');
  const opened: FileDevice[] = [];
  let qcow2 = false;
  try {
    for (const path of [fromPath, toPath]) {
      const file = await FileDevice.open(path);
      opened.push(file);
      qcow2 = await isQcow2(file);
      if (qcow2) break;
    }
  } catch (error) {
    await Promise.allSettled(opened.map((file) => file.close()));
    throw error;
  }
  const [from, to] = opened;
  if (qcow2 || from === undefined || to === undefined) {
    // A QCOW2 image among them: they are opened again as images (openImage).
    await Promise.all(opened.map((file) => file.close()));
    return undefined;
  }
  return { kind: 'images', from, to, close: () => closeBoth(from, to) };
}

/** QCOW2's magic, "QFI\xfb" (qcow2.txt), as detectFormat checks it. */
const QCOW2_MAGIC = 0x514649fb;

async function isQcow2(file: FileDevice): Promise<boolean> {
  return file.size >= 4 && (await file.read(0, 4)).readUInt32BE(0) === QCOW2_MAGIC;
}

/** QCOW2 snapshots are read on libuv's pool: large enough that a request's hand-off is cheap, small enough for the CPU cache. */
const QCOW2_READ_SIZE = 1 << 20;

async function closeBoth(a: BlockDevice, b: BlockDevice): Promise<void> {
  const results = await Promise.allSettled([a.close(), b.close()]);
  for (const result of results) if (result.status === 'rejected') throw result.reason;
}
