import { VdiBackupError } from '../errors.js';
import type { OpenedSources } from '../sources/opened-sources.js';

export async function openSheepdogSources(
  url: string,
  _from: string,
  _to: string | undefined,
): Promise<OpenedSources> {
  throw new VdiBackupError('UNSUPPORTED', 'Sheepdog sources are not implemented yet', {
    path: url,
  });
}
