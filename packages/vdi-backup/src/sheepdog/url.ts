import { VdiBackupError } from '../errors.js';
import type { SheepAddress } from './client.js';

/** sheep's default port. */
export const SD_LISTEN_PORT = 7000;

/** `sheepdog://host[:port]/vdiname` (IPv6 hosts in brackets). */
export function parseSheepdogUrl(url: string): SheepAddress & { vdi: string } {
  const match = /^sheepdog:\/\/(\[[^\]]+\]|[^/:]+)(?::(\d+))?\/(.+)$/.exec(url);
  if (!match) {
    throw new VdiBackupError('INVALID_ARGUMENT', 'expected sheepdog://host[:port]/vdiname', {
      path: url,
    });
  }
  const host = (match[1] as string).replace(/^\[|\]$/g, '');
  const port = match[2] === undefined ? SD_LISTEN_PORT : Number(match[2]);
  const vdi = decodeURIComponent(match[3] as string);
  if (port < 1 || port > 65535 || Buffer.byteLength(vdi) > 255) {
    throw new VdiBackupError('INVALID_ARGUMENT', 'bad port or VDI name', { path: url });
  }
  return { host, port, vdi };
}
