import { Qcow2Error } from '../errors.js';
import type { MetadataWriter } from './metadata-writer.js';

/** Byte offset of incompatible_features in a version 3 header. */
export const INCOMPATIBLE_FEATURES_OFFSET = 72;

/**
 * Sets and clears incompatible feature bits (corrupt, dirty) with one 8-byte
 * header write through the undo log. Reads the current value from the file,
 * so earlier writes of the same run are respected. Returns the new value.
 */
export async function updateIncompatibleFeatures(
  writer: MetadataWriter,
  change: { set?: bigint; clear?: bigint },
  reason: string,
): Promise<{ before: bigint; after: bigint }> {
  const image = writer.image;
  const version = (await image.read(4, 4)).readUInt32BE(0);
  if (version < 3) {
    throw new Qcow2Error(
      'UNSUPPORTED',
      'version 2 images have no feature bits (no corrupt or dirty bit)',
      {
        path: image.name,
        offset: 4,
        structure: 'qcow2 header',
      },
    );
  }
  const before = (await image.read(INCOMPATIBLE_FEATURES_OFFSET, 8)).readBigUInt64BE(0);
  const after = (before | (change.set ?? 0n)) & ~(change.clear ?? 0n);
  if (after !== before) {
    const bytes = Buffer.alloc(8);
    bytes.writeBigUInt64BE(after);
    await writer.queue(INCOMPATIBLE_FEATURES_OFFSET, bytes, reason);
    await writer.sync();
  }
  return { before, after };
}
