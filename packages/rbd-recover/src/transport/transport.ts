import type { Readable } from 'node:stream';

/**
 * How the tool runs commands on an OSD host: a local child process, or an SSH exec
 * channel. Everything it does on a host (list files, read xattrs, stream objects)
 * is a command, so both transports share the code above this interface, and the
 * tool never writes on a host: every command it runs only reads.
 */
export interface HostTransport {
  /** As in the hosts file (`local`, `osdhost`, `user@osdhost:2222`). */
  readonly host: string;
  /**
   * Runs `argv` (no shell locally; quoted for the remote shell over SSH). `stdin`
   * is written and ended. Fails with HOST_UNREACHABLE/AUTH_FAILED/… when the host
   * cannot be reached.
   */
  run(argv: readonly string[], options?: RunOptions): Promise<RunningCommand>;
  /** Closes connections; commands still running are ended. */
  close(): Promise<void>;
}

export interface RunOptions {
  stdin?: Uint8Array | undefined;
  signal?: AbortSignal | undefined;
}

export interface RunningCommand {
  readonly stdout: Readable;
  /** Resolves when the command has ended, with its exit code and (the end of) its stderr. */
  readonly done: Promise<CommandResult>;
  /** Ends the command (the channel or the process). */
  kill(): void;
}

export interface CommandResult {
  /** null when ended by a signal or when the connection dropped. */
  readonly code: number | null;
  readonly stderr: string;
}

/** At most this much of a command's stderr is kept for messages. */
export const STDERR_LIMIT = 16 * 1024;

export function appendStderr(kept: string, chunk: Buffer): string {
  const next = kept + chunk.toString('utf8');
  return next.length > STDERR_LIMIT ? next.slice(next.length - STDERR_LIMIT) : next;
}
