import { spawn } from 'node:child_process';

export interface ClosedReaderResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** Bytes of stdout seen before the pipe was closed. */
  bytesSeen: number;
}

/**
 * Runs a Node script as `script args | head -c 1` would: the read end of its stdout
 * is closed as soon as the first bytes arrive, so its next writes fail with EPIPE.
 * For checking that a CLI ends quietly when its reader goes away.
 */
export function runWithClosedReader(script: string, args: string[]): Promise<ClosedReaderResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let bytesSeen = 0;
    child.stdout.once('data', (chunk: Buffer) => {
      bytesSeen = chunk.byteLength;
      child.stdout.destroy();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr, bytesSeen }));
  });
}
