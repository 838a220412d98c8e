import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { requirePeer } from './peers.js';

const run = promisify(execFile);

export interface SshdOptions {
  /** Where keys, config and logs go (an empty directory of the test's own). */
  directory: string;
  /** Port on 127.0.0.1; default: a free one (never 22). */
  port?: number;
}

/** A real OpenSSH server on 127.0.0.1, started by a test with keys of its own. */
export interface SshdServer {
  readonly port: number;
  readonly pid: number;
  /** The client's private key (ed25519, no passphrase), authorised for the current user. */
  readonly userKey: string;
  /** A known_hosts file holding the server key for `[127.0.0.1]:port` and `[localhost]:port`. */
  readonly knownHosts: string;
  /** The user the server lets in (the current one). */
  readonly username: string;
  /** Ends every open SSH session (the per-connection sshd processes), not the server. */
  dropConnections(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts `sshd -D` on 127.0.0.1 with a generated host key and a generated user key
 * (the only key it accepts), on a non-default port. Fails loudly when sshd or
 * ssh-keygen is missing (`pnpm peers` installs openssh-server).
 */
export async function startSshd(options: SshdOptions): Promise<SshdServer> {
  const sshd = requirePeer('sshd');
  const keygen = requirePeer('ssh-keygen');
  const { directory } = options;
  await mkdir(directory, { recursive: true });
  const hostKey = join(directory, 'host_ed25519');
  const userKey = join(directory, 'user_ed25519');
  await run(keygen, ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  await run(keygen, ['-q', '-t', 'ed25519', '-N', '', '-f', userKey]);
  await writeFile(join(directory, 'authorized_keys'), await readFile(`${userKey}.pub`), {
    mode: 0o600,
  });
  const port = options.port ?? (await freePort());
  const username = (await run('id', ['-un'])).stdout.trim();
  const config = join(directory, 'sshd_config');
  await writeFile(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${join(directory, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(directory, 'authorized_keys')}`,
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      'MaxSessions 64',
      'MaxStartups 64',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  // sshd needs its privilege separation directory (absent in minimal containers).
  await mkdir('/run/sshd', { recursive: true }).catch(() => {});
  const child: ChildProcess = spawn(sshd, ['-D', '-e', '-f', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let tries = 0; ; tries++) {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${log.trim()}`);
    if (await accepts(port)) break;
    if (tries > 100) {
      child.kill('SIGTERM');
      throw new Error(`sshd did not listen on port ${port}: ${log.trim()}`);
    }
    await sleep(50);
  }
  const publicKey = (await readFile(`${hostKey}.pub`, 'utf8'))
    .trim()
    .split(/\s+/)
    .slice(0, 2)
    .join(' ');
  const knownHosts = join(directory, 'known_hosts');
  await writeFile(
    knownHosts,
    `[127.0.0.1]:${port} ${publicKey}\n[localhost]:${port} ${publicKey}\n`,
  );
  const pid = child.pid as number;
  return {
    port,
    pid,
    userKey,
    knownHosts,
    username,
    async dropConnections() {
      for (const child of await childrenOf(pid)) {
        try {
          process.kill(child, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/** Processes whose parent is `pid` (from /proc). */
async function childrenOf(pid: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid …: comm may hold spaces, so parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[1]) === pid) children.push(Number(entry));
  }
  return children;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
