import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const APP_ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const BIN = join(APP_ROOT, 'bin', 'vdi-backup.js');

export interface CliResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs the built `vdi-backup` bin; `input` is piped to its standard input. */
export function vdiBackup(args: string[], input?: Buffer): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code: code ?? -1,
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    child.stdin.end(input ?? Buffer.alloc(0));
  });
}

/** The result document of a `--json` run: the progress event lines before it are skipped. */
export function resultJson(stdout: Buffer): Record<string, unknown> {
  const lines = stdout
    .toString()
    .split('\n')
    .filter((line) => !line.startsWith('{"event":"progress"'));
  return JSON.parse(lines.join('\n')) as Record<string, unknown>;
}
