import type { BlockDevice } from '@x/blockio';
import { type BackingPolicy, detectFormat, openQcow2 } from '@x/qcow2/read';
import { VdiBackupError } from '../errors.js';
import type { OpenedSources } from './opened-sources.js';
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
    if ((await detectFormat(spec.from)) !== 'qcow2' && (await detectFormat(spec.to)) !== 'qcow2') {
      return openRawImages(spec.from, spec.to);
    }
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
  if ((await detectFormat(spec.source)) !== 'qcow2') {
    throw new VdiBackupError(
      'INVALID_ARGUMENT',
      'the source is neither a QCOW2 image nor a sheepdog:// URL; for two raw images give them as -F and -s without a source',
      { path: spec.source },
    );
  }
  // The changed clusters on the thread pool, a megabyte at a time; measured 1.7x faster
  // than synchronous reads of whole objects on a loaded machine (bench/bench.mjs,
  // create-qcow2).
  const from = await openQcow2(spec.source, { snapshot: spec.from, backingPolicy, io: 'async' });
  try {
    const to = await openQcow2(spec.source, { snapshot: spec.to, backingPolicy, io: 'async' });
    return {
      kind: 'qcow2-snapshots',
      from,
      to,
      readSize: QCOW2_READ_SIZE,
      sharedRanges: qcow2SharedRanges(from, to),
      close: () => closeBoth(from, to),
    };
  } catch (error) {
    await from.close();
    throw error;
  }
}

async function openImage(path: string, backingPolicy: BackingPolicy): Promise<BlockDevice> {
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
async function openRawImages(fromPath: string, toPath: string): Promise<OpenedSources> {
  const { FileDevice } = await import('@x/blockio');
  const from = await FileDevice.open(fromPath);
  try {
    const to = await FileDevice.open(toPath);
    return { kind: 'images', from, to, close: () => closeBoth(from, to) };
  } catch (error) {
    await from.close();
    throw error;
  }
}

/** QCOW2 snapshots are read on libuv's pool: large enough that a request's hand-off is cheap, small enough for the CPU cache. */
const QCOW2_READ_SIZE = 1 << 20;

async function closeBoth(a: BlockDevice, b: BlockDevice): Promise<void> {
  const results = await Promise.allSettled([a.close(), b.close()]);
  for (const result of results) if (result.status === 'rejected') throw result.reason;
}
