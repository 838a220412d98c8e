import type { BlockDevice } from '@x/blockio';
import { Qcow2Error } from '../errors.js';
import { QCOW_MAGIC } from '../format/constants.js';

/**
 * Refuses (`NOT_QCOW2`, before anything is written) a file that does not start
 * with the QCOW2 magic: a command that writes QCOW2 structures at fixed offsets
 * would otherwise change bytes of whatever file it was given (`set-feature --set
 * dirty` on a raw disk changed its byte 79).
 */
export async function requireQcow2Magic(file: BlockDevice): Promise<void> {
  const magic = file.size >= 4 ? (await file.read(0, 4)).readUInt32BE(0) : undefined;
  if (magic === QCOW_MAGIC) return;
  throw new Qcow2Error(
    'NOT_QCOW2',
    magic === undefined
      ? 'not a qcow2 image (file too short); nothing was written'
      : `not a qcow2 image (magic 0x${magic.toString(16).padStart(8, '0')}, expected 0x514649fb); nothing was written`,
    { path: file.name, offset: 0, structure: 'qcow2 header' },
  );
}
