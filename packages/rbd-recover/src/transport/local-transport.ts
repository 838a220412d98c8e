import { spawn } from 'node:child_process';
import { throwIfAborted } from '@x/blockio';
import { LOCAL_HOST } from '../hosts-file.js';
import {
  appendStderr,
  type CommandResult,
  type HostTransport,
  type RunningCommand,
  type RunOptions,
} from './transport.js';

/** Commands on this machine: OSD disks attached here (host `local` in the hosts file). */
export class LocalTransport implements HostTransport {
  readonly host = LOCAL_HOST;
  readonly #children = new Set<ReturnType<typeof spawn>>();

  async run(argv: readonly string[], options: RunOptions = {}): Promise<RunningCommand> {
    throwIfAborted(options.signal);
    const [command, ...args] = argv;
    const child = spawn(command as string, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    this.#children.add(child);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = appendStderr(stderr, chunk);
    });
    child.stdin.on('error', () => {}); // a command that exits early closes its stdin
    if (options.stdin !== undefined) child.stdin.end(options.stdin);
    else child.stdin.end();
    const onAbort = () => child.kill('SIGTERM');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const done = new Promise<CommandResult>((resolve) => {
      child.on('error', (error: NodeJS.ErrnoException) => {
        // spawn failed: report it as the shell would, 127 for a missing program.
        resolve({ code: error.code === 'ENOENT' ? 127 : 126, stderr: error.message });
      });
      child.on('close', (code) => {
        this.#children.delete(child);
        options.signal?.removeEventListener('abort', onAbort);
        resolve({ code, stderr });
      });
    });
    return { stdout: child.stdout, done, kill: () => child.kill('SIGTERM') };
  }

  async close(): Promise<void> {
    for (const child of this.#children) child.kill('SIGTERM');
  }
}
