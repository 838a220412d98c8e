import { exactJsonInteger } from './json-integer.js';

/**
 * Stable error codes. Format packages add their own codes on top of these; the
 * code is what scripts and tests match on, the message is for people.
 */
export type BlockIoErrorCode =
  | 'ENOENT'
  | 'EACCES'
  | 'EEXIST'
  | 'EISDIR'
  | 'ENOSPC'
  | 'EIO'
  | 'EPIPE'
  | 'SHORT_READ'
  | 'OUT_OF_RANGE'
  | 'READ_ONLY'
  | 'ABORTED'
  | 'CORRUPT'
  | 'UNSUPPORTED'
  | 'INVALID_ARGUMENT'
  | 'UNSAFE_INTEGER'
  | 'CLOSED'
  | 'SAME_FILE'
  | 'NOT_A_FILE'
  | 'TARGET_BUSY';

export interface BlockIoErrorOptions {
  /** Path of the file or a description of the device involved. */
  path?: string | undefined;
  /** Byte offset in that file where the problem is. */
  offset?: number | bigint | undefined;
  /** The on-disk structure involved ("qcow2 header", "L2 table 3", "group descriptor 12"). */
  structure?: string | undefined;
  cause?: unknown;
}

/** Base error for every package: a stable `code`, the file, the offset and the structure. */
export class BlockIoError extends Error {
  readonly code: string;
  readonly path: string | undefined;
  readonly offset: number | bigint | undefined;
  readonly structure: string | undefined;

  constructor(code: string, message: string, options: BlockIoErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.path = options.path;
    this.offset = options.offset;
    this.structure = options.structure;
  }

  /** One line for people: `path: structure at offset 0x…: message`. */
  describe(): string {
    const where: string[] = [];
    if (this.path !== undefined) where.push(this.path);
    const at: string[] = [];
    if (this.structure !== undefined) at.push(this.structure);
    if (this.offset !== undefined) at.push(`at offset ${formatOffset(this.offset)}`);
    if (at.length > 0) where.push(at.join(' '));
    return where.length > 0 ? `${where.join(': ')}: ${this.message}` : this.message;
  }

  /** For `--json` output; a bigint `offset` stays exact (a decimal string above 2^53 - 1). */
  toJSON(): Record<string, unknown> {
    return {
      error: this.name,
      code: this.code,
      message: this.message,
      path: this.path,
      offset: typeof this.offset === 'bigint' ? exactJsonInteger(this.offset) : this.offset,
      structure: this.structure,
    };
  }
}

/**
 * How a library refusal names the boolean option that would let the operation
 * through ("pass force: true"): the one spelling, so that a CLI can name its own
 * flag for that option instead (RunCommandOptions.optionFlags).
 */
export function optionRemedy(option: string): string {
  return `pass ${option}: true`;
}

/** The remedy createOutputFile's EEXIST refusals name: its `overwrite` option. */
export const OVERWRITE_REMEDY = optionRemedy('overwrite');

export function formatOffset(offset: number | bigint): string {
  return `${offset} (0x${offset.toString(16)})`;
}

const SYSTEM_CODES: Record<string, BlockIoErrorCode> = {
  ENOENT: 'ENOENT',
  EACCES: 'EACCES',
  EPERM: 'EACCES',
  EROFS: 'READ_ONLY',
  EEXIST: 'EEXIST',
  EISDIR: 'EISDIR',
  ENOSPC: 'ENOSPC',
  EDQUOT: 'ENOSPC',
  EIO: 'EIO',
  EPIPE: 'EPIPE',
};

/** Turns a Node system error into a BlockIoError naming the path and what we were doing. */
export function fromSystemError(
  error: unknown,
  action: string,
  options: BlockIoErrorOptions = {},
): BlockIoError {
  if (error instanceof BlockIoError) return error;
  const systemCode = (error as NodeJS.ErrnoException | undefined)?.code;
  const code = (systemCode !== undefined && SYSTEM_CODES[systemCode]) || 'EIO';
  const reason =
    systemCode === 'ENOENT'
      ? 'no such file or directory'
      : systemCode === 'EACCES' || systemCode === 'EPERM'
        ? 'permission denied'
        : systemCode === 'EEXIST'
          ? 'already exists'
          : systemCode === 'EISDIR'
            ? 'is a directory'
            : systemCode === 'ENOSPC'
              ? 'no space left on device'
              : ((error as Error | undefined)?.message ?? String(error));
  return new BlockIoError(code, `cannot ${action}: ${reason}`, { ...options, cause: error });
}

/** The error a cancelled operation throws; CLIs map it to exit code 130/143. */
export function abortedError(signal: AbortSignal | undefined, path?: string): BlockIoError {
  const detail = abortReason(signal?.reason);
  return new BlockIoError('ABORTED', `operation cancelled${detail}`, { path });
}

/** Why the caller aborted, for the message: an Error's message or a primitive reason as given. */
function abortReason(reason: unknown): string {
  if (reason instanceof Error) return reason.message === '' ? '' : `: ${reason.message}`;
  if (reason === undefined || reason === null || reason === '') return '';
  if (typeof reason === 'object' || typeof reason === 'function') return '';
  return `: ${String(reason)}`;
}

export function throwIfAborted(signal: AbortSignal | undefined, path?: string): void {
  if (signal?.aborted) throw abortedError(signal, path);
}
