import { execFile } from 'node:child_process';

export interface BinResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a built CLI bin (a script path) with this Node as a child process; resolves
 * with its exit code and output whatever the code, rejects only when it cannot start.
 */
export function runBin(bin: string, args: readonly string[]): Promise<BinResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { encoding: 'utf8', maxBuffer: 64 << 20 },
      (error, stdout, stderr) => {
        const code = (error as { code?: unknown } | null)?.code;
        if (error && typeof code !== 'number') {
          reject(error);
          return;
        }
        resolve({ code: typeof code === 'number' ? code : 0, stdout, stderr });
      },
    );
  });
}
