import { type ExecFileOptions, execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Where a peer program lives, or undefined. Looks in PATH and the sbin directories. */
export function findPeer(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...SYSTEM_DIRS];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/**
 * The path of a peer a test needs. A missing peer is a failure, never a skip:
 * `pnpm test` installs them with tools/peers/setup.
 */
export function requirePeer(name: string): string {
  const path = findPeer(name);
  if (!path) {
    throw new Error(
      `peer program "${name}" is not installed; run \`pnpm peers\` (tools/peers/setup) or \`pnpm test\`, which installs it`,
    );
  }
  return path;
}

export interface PeerResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a peer and returns its output and exit code (a non-zero code is not thrown). */
export function runPeer(
  name: string,
  args: readonly string[],
  options: ExecFileOptions & { input?: string } = {},
): Promise<PeerResult> {
  const path = requirePeer(name);
  return new Promise((resolve, reject) => {
    const child = execFile(
      path,
      args,
      { maxBuffer: 256 << 20, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' }, ...options },
      (error, stdout, stderr) => {
        const code = (error as { code?: unknown } | null)?.code;
        if (error && typeof code !== 'number') {
          reject(error);
          return;
        }
        resolve({
          stdout: String(stdout),
          stderr: String(stderr),
          code: typeof code === 'number' ? code : 0,
        });
      },
    );
    // Standard input ends at once when none is given: a peer that would read it (qemu-io
    // with no -c, interactive) then stops instead of waiting forever.
    child.stdin?.end(options.input);
  });
}

/** Runs a peer and throws (with its stderr) unless it exits 0. */
export async function runPeerOk(
  name: string,
  args: readonly string[],
  options: ExecFileOptions & { input?: string } = {},
): Promise<PeerResult> {
  const result = await runPeer(name, args, options);
  if (result.code !== 0) {
    throw new Error(
      `${name} ${args.join(' ')} exited ${result.code}: ${result.stderr || result.stdout}`,
    );
  }
  return result;
}
