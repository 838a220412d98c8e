import { execFile } from 'node:child_process';
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { requirePeer, runPeerOk } from '@x/test-utils';
import { PACKAGE_ROOT } from './ceph-fixture.js';

/**
 * Databases made by the real libraries: LevelDB through plyvel on the system Python
 * (/usr/bin/python3: the python3 first on PATH may be another one without plyvel),
 * RocksDB through `ldb` (rocksdb-tools). Missing peers fail the test, never skip it.
 */
export const SYSTEM_PYTHON = '/usr/bin/python3';
const PLYVEL_SCRIPT = join(PACKAGE_ROOT, 'test', 'support', 'plyvel-build.py');

export type LevelDbOp =
  | ['put', string, string]
  | ['delete', string]
  | ['batch', Array<['put', string, string] | ['delete', string]>]
  | ['compact']
  | ['compact', string, string];

export interface LevelDbSession {
  options?: {
    write_buffer_size?: number;
    block_size?: number;
    block_restart_interval?: number;
    compression?: 'snappy' | null;
    max_file_size?: number;
  };
  ops: LevelDbOp[];
}

function runPython(input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      SYSTEM_PYTHON,
      [PLYVEL_SCRIPT],
      { maxBuffer: 1 << 30, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error)
          reject(new Error(`plyvel (${SYSTEM_PYTHON}) failed: ${stderr || error.message}`));
        else resolve(stdout);
      },
    );
    child.stdin?.end(input);
  });
}

/** Builds a LevelDB database at `path` session by session (see plyvel-build.py). */
export async function buildLevelDb(path: string, sessions: LevelDbSession[]): Promise<void> {
  await runPython(JSON.stringify({ path, sessions }));
}

/** Every live entry as plyvel reads it, `[hex key, hex value]`; read from a copy (LevelDB writes on open). */
export async function levelDbListing(path: string): Promise<Array<[string, string]>> {
  const copy = `${path}.plyvel-copy`;
  await rm(copy, { recursive: true, force: true });
  await cp(path, copy, { recursive: true });
  try {
    return parseLines(await runPython(JSON.stringify({ path: copy, list: true })), ' ');
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
}

/** One `ldb` invocation (each opens the database, so RocksDB flushes the previous log). */
export async function ldb(path: string, args: readonly string[]): Promise<string> {
  requirePeer('ldb');
  const { stdout } = await runPeerOk('ldb', [`--db=${path}`, ...args]);
  return stdout;
}

/** Every live entry as `ldb scan --hex` prints it, `[hex key, hex value]`; read from a copy. */
export async function rocksDbListing(path: string): Promise<Array<[string, string]>> {
  const copy = `${path}.ldb-copy`;
  await rm(copy, { recursive: true, force: true });
  await cp(path, copy, { recursive: true });
  try {
    const out = await ldb(copy, ['scan', '--hex']);
    return parseLines(out, ' : ').map(([key, value]) => [
      key.replace(/^0x/, '').toLowerCase(),
      value.replace(/^0x/, '').toLowerCase(),
    ]);
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
}

function parseLines(text: string, separator: string): Array<[string, string]> {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const at = line.indexOf(separator);
      if (at < 0) throw new Error(`unexpected listing line: ${line}`);
      return [line.slice(0, at), line.slice(at + separator.length)];
    });
}

export const hex = (text: string): string => Buffer.from(text, 'latin1').toString('hex');
