import { createHmac } from 'node:crypto';

/**
 * OpenSSH known_hosts: `[marker] host[,host…] keytype base64-key [comment]`, hosts as
 * `name`, `[name]:port` or hashed `|1|salt|hmac-sha1`. Answers whether a host's key is
 * known, unknown, or different from the one on record.
 */
export type HostKeyVerdict = 'known' | 'unknown' | 'mismatch';

export function hostPattern(hostname: string, port: number): string {
  return port === 22 ? hostname : `[${hostname}]:${port}`;
}

export function checkHostKey(
  knownHosts: string,
  hostname: string,
  port: number,
  key: Uint8Array,
): HostKeyVerdict {
  const wanted = hostPattern(hostname, port);
  const blob = Buffer.from(key).toString('base64');
  let seen = false;
  for (const raw of knownHosts.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    if (fields[0]?.startsWith('@')) {
      if (fields[0] === '@revoked' && fields[3] === blob && matches(fields[1] ?? '', wanted)) {
        return 'mismatch';
      }
      continue; // @cert-authority: not supported, never matches
    }
    const [hosts = '', , keyText] = fields;
    if (!matches(hosts, wanted)) continue;
    seen = true;
    if (keyText === blob) return 'known';
  }
  return seen ? 'mismatch' : 'unknown';
}

function matches(hosts: string, wanted: string): boolean {
  for (const host of hosts.split(',')) {
    if (host.startsWith('|1|')) {
      const [, , salt = '', hash = ''] = host.split('|');
      const computed = createHmac('sha1', Buffer.from(salt, 'base64'))
        .update(wanted)
        .digest('base64');
      if (computed === hash) return true;
    } else if (host === wanted) {
      return true;
    }
  }
  return false;
}
