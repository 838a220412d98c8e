import { VdiBackupError } from '../errors.js';
import type { PreparedTarget } from '../restore/prepared-target.js';
import type { SheepdogRestoreTarget } from '../restore/sheepdog-target-types.js';

export async function prepareSheepdogTarget(
  target: SheepdogRestoreTarget,
): Promise<PreparedTarget> {
  throw new VdiBackupError('UNSUPPORTED', 'Sheepdog targets are not implemented yet', {
    path: target.url,
  });
}
