import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The published bin, run as users run it (a child process, built code). */
export const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'x-e2image.js');

export interface Result {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs `x-e2image args…`; stdout stays bytes (raw images go there with `-`). */
export function run(args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
  });
}
