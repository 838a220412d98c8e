import { type BlockDevice, FileDevice } from '@x/blockio';
import { Qcow2Error } from '../errors.js';
import { QCOW_MAGIC } from '../format/constants.js';
import type { Qcow2Metadata } from '../format/image-metadata.js';
import type { ChainState, OpenInChain, OpenQcow2Options } from '../image/open-options.js';
import { backingOpenError } from './backing-open-error.js';
import { checkBackingDepth, resolveNamedFile } from './policy.js';
import { RawBackingFile } from './raw-backing-file.js';

export interface OpenedBacking {
  device: BlockDevice;
  path: string;
  format: 'qcow2' | 'raw';
}

/**
 * Opens the backing file `metadata` names, read-only: relative names against
 * the image's directory, the format from the header extension (or probed by
 * magic when absent, as QEMU does), qcow2 backings recursively with the same
 * policy. Loops and absurd depths are BACKING_LOOP. `openInChain` opens a qcow2
 * backing (open.ts passes its own, which calls back here for the next link).
 */
export async function openBackingFile(
  imagePath: string,
  metadata: Qcow2Metadata,
  options: OpenQcow2Options,
  chain: ChainState,
  openInChain: OpenInChain,
): Promise<OpenedBacking> {
  const name = metadata.backingFile as string;
  checkBackingDepth(chain.depth, imagePath);
  const path = resolveNamedFile(imagePath, name, 'backing file');
  const declared = metadata.backingFormat;
  if (declared !== undefined && declared !== 'qcow2' && declared !== 'raw') {
    throw new Qcow2Error(
      'UNSUPPORTED',
      `backing file format "${declared}" is not supported (qcow2 and raw are)`,
      { path: imagePath, structure: 'backing file format extension' },
    );
  }
  try {
    const format = declared ?? (await probeFormat(path));
    if (format === 'qcow2') {
      const device = await openInChain(
        path,
        {
          backingPolicy: options.backingPolicy,
          l2CacheBytes: options.l2CacheBytes,
          io: options.io,
          salvage: options.salvage,
        },
        chain,
      );
      return { device, path, format };
    }
    const file = await FileDevice.open(path, { io: options.io });
    return { device: new RawBackingFile(file), path, format };
  } catch (error) {
    throw backingOpenError(error, path, imagePath);
  }
}

async function probeFormat(path: string): Promise<'qcow2' | 'raw'> {
  const file = await FileDevice.open(path);
  try {
    if (file.size < 4) return 'raw';
    return (await file.read(0, 4)).readUInt32BE(0) === QCOW_MAGIC ? 'qcow2' : 'raw';
  } finally {
    await file.close();
  }
}
