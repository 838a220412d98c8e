import { posix } from 'node:path';
import { RbdRecoverError } from '../errors.js';
import { readChunks } from './read-chunks.js';
import { readTarStream, type TarEntryHandler } from './tar-reader.js';
import type { CommandResult, HostTransport, RunningCommand } from './transport.js';

/**
 * The read-only commands the tool runs on an OSD host, the same through either
 * transport: `find` for the listing, `getfattr` (package attr) for xattrs, `tar` to
 * stream many files through one channel, and a look at /proc for a running ceph-osd.
 */

/** Which package brings each program, for the MISSING_TOOL message. */
const PACKAGES: Record<string, string> = {
  find: 'findutils',
  xargs: 'findutils',
  getfattr: 'attr',
  tar: 'tar',
  sha1sum: 'coreutils',
  sh: 'a POSIX shell',
};

export interface CommandOptions {
  signal?: AbortSignal | undefined;
  /** A command that sends nothing for this long is ended (STALLED). Default 60 s. */
  stallTimeoutMs?: number | undefined;
}

export const DEFAULT_STALL_TIMEOUT_MS = 60_000;

function missingTool(transport: HostTransport, program: string, path: string): RbdRecoverError {
  return new RbdRecoverError(
    'MISSING_TOOL',
    `"${program}" is not installed on ${transport.host === 'local' ? 'this machine' : `host ${transport.host}`}; install the ${PACKAGES[program] ?? program} package there`,
    { host: transport.host, path },
  );
}

function commandFailed(
  transport: HostTransport,
  what: string,
  result: CommandResult,
  path: string,
): RbdRecoverError {
  const reason =
    result.code === null
      ? 'the command was ended (connection lost or killed)'
      : `exit code ${result.code}`;
  const detail = result.stderr.trim().split('\n').slice(-3).join('; ');
  return new RbdRecoverError(
    'REMOTE_FAILED',
    `${what} failed: ${reason}${detail ? `: ${detail}` : ''}`,
    { host: transport.host, path },
  );
}

/**
 * Iterates a command's stdout, ending the command when no bytes come for `stallMs`
 * (STALLED), or when the consumer stops early.
 */
async function* withStallTimeout(
  transport: HostTransport,
  command: RunningCommand,
  stallMs: number,
  path: string,
): AsyncIterable<Buffer> {
  let stalled = false;
  const timer = setTimeout(() => {
    stalled = true;
    command.kill();
    command.stdout.destroy();
  }, stallMs);
  try {
    for await (const chunk of readChunks(command.stdout)) {
      // refresh() re-arms in place: a new timer per packet showed in profiles.
      timer.refresh();
      yield chunk;
    }
  } catch (error) {
    if (!stalled) throw error;
  } finally {
    clearTimeout(timer);
  }
  if (stalled) {
    throw new RbdRecoverError('STALLED', `no data for ${Math.round(stallMs / 1000)} s`, {
      host: transport.host,
      path,
    });
  }
}

/** One regular file under `current/`: its path relative to `current/` (a latin1 byte string). */
export interface ListedFile {
  readonly path: string;
  readonly size: number;
}

/**
 * Lists every regular file under `directory` (an OSD's `current/`) with its size, in
 * one streamed pass (`find -printf`), recursing DIR_* levels and every collection.
 */
export async function* listFiles(
  transport: HostTransport,
  directory: string,
  options: CommandOptions = {},
): AsyncIterable<ListedFile> {
  for await (const batch of listFileBatches(transport, directory, options)) yield* batch;
}

/** listFiles in batches (one per chunk of find's output): 100,000 files cost far fewer awaits. */
export async function* listFileBatches(
  transport: HostTransport,
  directory: string,
  options: CommandOptions = {},
): AsyncIterable<ListedFile[]> {
  const current = directory;
  const command = await transport.run(['find', current, '-type', 'f', '-printf', '%s %P\\0'], {
    signal: options.signal,
  });
  let rest: Buffer = Buffer.alloc(0);
  let completed = false;
  try {
    for await (const chunk of withStallTimeout(
      transport,
      command,
      options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
      current,
    )) {
      rest = rest.byteLength === 0 ? chunk : Buffer.concat([rest, chunk]);
      const text = rest.toString('latin1');
      const batch: ListedFile[] = [];
      let start = 0;
      for (;;) {
        const end = text.indexOf('\0', start);
        if (end < 0) break;
        const space = text.indexOf(' ', start);
        batch.push({ size: Number(text.slice(start, space)), path: text.slice(space + 1, end) });
        start = end + 1;
      }
      rest = rest.subarray(start);
      if (batch.length > 0) yield batch;
    }
    completed = true;
  } finally {
    // Only a consumer that stopped early (or an error) ends the command.
    if (!completed) command.kill();
  }
  const result = await command.done;
  if (result.code === 127) throw missingTool(transport, 'find', current);
  if (result.code !== 0) throw commandFailed(transport, 'listing', result, current);
}

/** Reads a whole small file (OSD map, header object), or undefined when it is gone. */
export async function readSmallFile(
  transport: HostTransport,
  path: string,
  options: CommandOptions = {},
): Promise<Buffer | undefined> {
  const command = await transport.run(
    ['sh', '-c', 'exec cat -- "$1" 2>/dev/null || exit 3', 'sh', path],
    {
      signal: options.signal,
    },
  );
  const chunks: Buffer[] = [];
  for await (const chunk of withStallTimeout(
    transport,
    command,
    options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
    path,
  )) {
    chunks.push(chunk);
  }
  const result = await command.done;
  if (result.code === 3) return undefined;
  if (result.code !== 0) throw commandFailed(transport, 'reading', result, path);
  return Buffer.concat(chunks);
}

/**
 * The xattrs whose names match `pattern` (a getfattr regular expression) of files
 * under `directory`, in one `xargs getfattr` run fed the names on stdin. Files with no
 * matching xattr (and files that vanished) are absent from the result.
 */
export async function readXattrs(
  transport: HostTransport,
  directory: string,
  paths: readonly string[],
  pattern: string,
  options: CommandOptions = {},
): Promise<Map<string, Map<string, Buffer>>> {
  const { parseXattrDump } = await import('../filestore/xattr-dump.js');
  if (paths.length === 0) return new Map();
  const output = await runOverFiles(
    transport,
    directory,
    paths,
    ['getfattr', '--absolute-names', '-d', '-m', pattern, '-e', 'hex'],
    'reading xattrs',
    options,
  );
  return parseXattrDump(output.toString('latin1'), `${transport.host}:${directory}`);
}

/**
 * Streams files under `directory` through one `tar` run; `onEntry` is called per
 * file as its bytes arrive. Returns the paths tar could not read (vanished files),
 * from its messages and from the entries that never came.
 */
export async function streamFiles(
  transport: HostTransport,
  directory: string,
  paths: readonly string[],
  onEntry: TarEntryHandler,
  options: CommandOptions = {},
): Promise<{ missing: string[]; stderr: string }> {
  const received = new Set<string>();
  let completed = false;
  const stdin = Buffer.from(`${paths.join('\0')}\0`, 'latin1');
  // -b 256: 128 KiB records. tar's default 10 KiB writes cost it and its reader (sshd)
  // twice the CPU per byte of `cat`; the end is padded to a record, which the reader drains.
  const command = await transport.run(
    [
      'sh',
      '-c',
      'cd -- "$1" || exit 3; command -v tar >/dev/null 2>&1 || exit 127; exec tar -c -f - -b 256 --no-recursion --null --no-unquote --verbatim-files-from -T -',
      'sh',
      directory,
    ],
    { stdin, signal: options.signal },
  );
  try {
    await readTarStream(
      withStallTimeout(
        transport,
        command,
        options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
        directory,
      ),
      (path, size) => {
        received.add(path);
        return onEntry(path, size);
      },
      { host: transport.host, path: directory },
    );
    completed = true;
  } finally {
    if (!completed) command.kill();
  }
  const result = await command.done;
  if (result.code === 127) throw missingTool(transport, 'tar', directory);
  if (result.code === 3) {
    throw new RbdRecoverError('REMOTE_FAILED', 'the directory cannot be entered', {
      host: transport.host,
      path: directory,
    });
  }
  const missing = paths.filter((path) => !received.has(path));
  // tar exits 2 when some file could not be read, having sent the others.
  if (result.code !== 0 && !(result.code === 2 && missing.length > 0)) {
    throw commandFailed(transport, 'streaming objects', result, directory);
  }
  return { missing, stderr: result.stderr };
}

/**
 * SHA-1 of files under `directory`, computed on the host (`xargs sha1sum -z`: only the
 * digests cross the network). Files that could not be read are absent from the result.
 */
export async function hashFiles(
  transport: HostTransport,
  directory: string,
  paths: readonly string[],
  options: CommandOptions = {},
): Promise<Map<string, string>> {
  const digests = new Map<string, string>();
  if (paths.length === 0) return digests;
  const output = await runOverFiles(
    transport,
    directory,
    paths,
    ['sha1sum', '-z'],
    'hashing files',
    options,
  );
  // `-z`: `<40 hex>  <name>\0` records, names unescaped (bytes as they are).
  for (const record of output.toString('latin1').split('\0')) {
    if (/^[0-9a-f]{40} [ *]/.test(record)) digests.set(record.slice(42), record.slice(0, 40));
  }
  return digests;
}

/**
 * Runs `tool` over files under `directory` in one `xargs -0` run fed their names on
 * stdin, and returns its standard output. Missing tool and an unenterable directory are
 * typed errors; xargs' 123 (the tool failed for some file, e.g. one that vanished) is
 * not: the other files' output is returned.
 */
async function runOverFiles(
  transport: HostTransport,
  directory: string,
  paths: readonly string[],
  tool: readonly [string, ...string[]],
  purpose: string,
  options: CommandOptions,
): Promise<Buffer> {
  const command = await transport.run(
    [
      'sh',
      '-c',
      'cd -- "$1" || exit 3; shift; command -v "$1" >/dev/null 2>&1 || exit 127; exec xargs -0 -r "$@" --',
      'sh',
      directory,
      ...tool,
    ],
    { stdin: Buffer.from(`${paths.join('\0')}\0`, 'latin1'), signal: options.signal },
  );
  const chunks: Buffer[] = [];
  for await (const chunk of withStallTimeout(
    transport,
    command,
    options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
    directory,
  )) {
    chunks.push(chunk);
  }
  const result = await command.done;
  if (result.code === 127) throw missingTool(transport, tool[0], directory);
  if (result.code === 3) {
    throw new RbdRecoverError('REMOTE_FAILED', 'the directory cannot be entered', {
      host: transport.host,
      path: directory,
    });
  }
  if (result.code !== 0 && result.code !== 123) {
    throw commandFailed(transport, purpose, result, directory);
  }
  return Buffer.concat(chunks);
}

/** A ceph-osd process on the host that uses `dataPath` (see osdProcessUsing). */
export interface RunningOsd {
  readonly pid: number;
  readonly commandLine: string;
}

/**
 * Finds a ceph-osd process serving this data path: one started with `--osd-data`
 * naming it, or with the id in `<dataPath>/whoami`. Journal flushes
 * (`--flush-journal`) do not count; other clusters' OSDs on the host do not either.
 */
export async function findRunningOsd(
  transport: HostTransport,
  dataPath: string,
  options: CommandOptions = {},
): Promise<RunningOsd | undefined> {
  // Shell builtins only inside the loop: a fork per process of the host cost a second.
  const script =
    'cat -- "$1/whoami" 2>/dev/null | head -n 1; echo; ' +
    'for p in /proc/[0-9]*; do read -r c < "$p/comm" 2>/dev/null || continue; ' +
    '[ "$c" = ceph-osd ] || continue; ' +
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
    'printf "%s " "${p#/proc/}"; tr "\\0" " " < "$p/cmdline" 2>/dev/null; echo; done';
  const command = await transport.run(['sh', '-c', script, 'sh', dataPath], {
    signal: options.signal,
  });
  const chunks: Buffer[] = [];
  for await (const chunk of command.stdout) chunks.push(chunk as Buffer);
  const result = await command.done;
  if (result.code !== 0) throw commandFailed(transport, 'looking for ceph-osd', result, dataPath);
  const [whoami = '', ...lines] = Buffer.concat(chunks).toString('utf8').split('\n');
  return osdProcessUsing(lines, dataPath, whoami.trim());
}

export function osdProcessUsing(
  lines: readonly string[],
  dataPath: string,
  whoami: string,
): RunningOsd | undefined {
  const wanted = posix.normalize(dataPath).replace(/\/+$/, '');
  for (const line of lines) {
    const match = /^(\d+) (.*)$/.exec(line.trim());
    if (!match) continue;
    const args = (match[2] as string).trim().split(/\s+/);
    if (args.includes('--flush-journal') || args.includes('--mkfs')) continue;
    const value = (flag: string) => {
      const index = args.indexOf(flag);
      if (index >= 0) return args[index + 1];
      return args.find((arg) => arg.startsWith(`${flag}=`))?.slice(flag.length + 1);
    };
    const data = value('--osd-data') ?? value('--osd_data');
    const id = value('-i') ?? value('--id');
    const uses =
      data !== undefined
        ? posix.normalize(data).replace(/\/+$/, '') === wanted
        : whoami !== '' && id === whoami;
    if (uses) return { pid: Number(match[1]), commandLine: (match[2] as string).trim() };
  }
  return undefined;
}
