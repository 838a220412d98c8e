import { readFile } from 'node:fs/promises';
import { fromSystemError } from '@x/blockio';
import { RbdRecoverError } from './errors.js';

/** One OSD to read: a data path on a host (or on this machine, host `local`). */
export interface OsdLocation {
  /** The host as written in the hosts file (`local`, `osdhost`, `user@osdhost:2222`). */
  readonly host: string;
  /** SSH connection details; undefined for `local`. */
  readonly ssh?: SshAddress | undefined;
  /** The OSD data directory (holding `current/`). */
  readonly dataPath: string;
}

export interface SshAddress {
  readonly hostname: string;
  readonly port: number;
  readonly username?: string | undefined;
}

/** The host name that means "a data path on this machine". */
export const LOCAL_HOST = 'local';

/**
 * The original tool's `osd_host_path` format: one `<host> <data path>` per line,
 * whitespace-separated, `#` comments and blank lines skipped, a host with several OSDs
 * on several lines. A host may be `user@host:port` (or `user@[v6addr]:port`).
 */
export function parseHostsFile(text: string, source = 'hosts file'): OsdLocation[] {
  const osds: OsdLocation[] = [];
  const seen = new Set<string>();
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (line === '') continue;
    const fail = (reason: string) =>
      new RbdRecoverError('BAD_HOSTS_FILE', `line ${index + 1}: ${reason}: "${raw.trim()}"`, {
        path: source,
      });
    const match = /^(\S+)\s+(.+)$/.exec(line);
    if (!match) throw fail('expected "<host> <OSD data path>"');
    const host = match[1] as string;
    const dataPath = (match[2] as string).trim();
    if (!dataPath.startsWith('/') && host !== LOCAL_HOST) {
      throw fail('the data path must be absolute');
    }
    const key = `${host}\0${dataPath}`;
    if (seen.has(key)) throw fail('the same OSD is listed twice');
    seen.add(key);
    osds.push({
      host,
      ssh: host === LOCAL_HOST ? undefined : parseSshAddress(host, fail),
      dataPath,
    });
  }
  if (osds.length === 0) {
    throw new RbdRecoverError('BAD_HOSTS_FILE', 'no OSD lines', { path: source });
  }
  return osds;
}

export async function readHostsFile(path: string): Promise<OsdLocation[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw fromSystemError(error, 'read the hosts file', { path });
  }
  return parseHostsFile(text, path);
}

function parseSshAddress(text: string, fail: (reason: string) => Error): SshAddress {
  const match = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s]+)(?::(\d+))?$/.exec(text);
  if (!match) throw fail('the host is not [user@]host[:port]');
  const port = match[3] === undefined ? 22 : Number(match[3]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw fail(`bad port ${match[3]}`);
  const hostname = (match[2] as string).replace(/^\[(.*)\]$/, '$1');
  return { hostname, port, username: match[1] };
}
