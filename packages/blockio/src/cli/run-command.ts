import { BlockIoError, optionRemedy } from '../errors.js';
import { exactJsonInteger } from '../json-integer.js';
import { removePartialOutputsSync } from '../partial-outputs.js';
import {
  createProgressRenderer,
  type ProgressMode,
  type ProgressRenderer,
} from '../progress/renderers.js';
import { EXIT_FAILURE, EXIT_SIGINT, EXIT_SIGPIPE, EXIT_SIGTERM, EXIT_USAGE } from './exit-codes.js';

export interface CommandContext {
  /** Aborted on SIGINT/SIGTERM; pass it to every long library call. */
  readonly signal: AbortSignal;
  /** `--json` was given: stdout carries only JSON. */
  readonly json: boolean;
  /** Progress renderer chosen from `--progress` / `--json` / whether stderr is a TTY. */
  readonly progress: ProgressRenderer;
  /** Prints one JSON document to stdout. */
  printJson(value: unknown): void;
  /** Prints a line for people on stderr (when `--json`) or stdout (otherwise); clears the bar first. */
  print(line: string): void;
  /** Prints a warning on stderr; clears the bar first. */
  warn(line: string): void;
}

export interface RunCommandOptions {
  json?: boolean | undefined;
  progress?: ProgressMode | string | undefined;
  /** Name shown before error messages, e.g. "qcow2". */
  program: string;
  /**
   * The CLI's flags for the library's boolean options, e.g. `{ overwrite: '--force' }`:
   * a refusal naming an option's remedy ("pass overwrite: true", see optionRemedy)
   * is printed (and with `--json`, serialised) with "use --force" instead.
   */
  optionFlags?: OptionFlags | undefined;
  /**
   * End every error line with its stable code in brackets (`… [ENOSPC]`), as a
   * CLI whose README promises it does (x-e2image). Default false.
   */
  showCodes?: boolean | undefined;
}

/** Library option name → the CLI flag that sets it. */
export type OptionFlags = Readonly<Record<string, string>>;

/**
 * An error that means "the command line was wrong": exit code 2, printed as one
 * line `<tool>: <problem> (see --help)`.
 */
export class UsageError extends Error {
  readonly code = 'USAGE';
  override name = 'UsageError';
}

/**
 * Runs one CLI action: wires SIGINT/SIGTERM to an AbortSignal (the action cleans
 * up, then we exit 130/143), prints errors as one line (or a JSON object with
 * `--json`) instead of a stack trace, and sets the exit code. The action returns
 * its own exit code when it has one (e.g. `qcow2 check`).
 */
export async function runCommand(
  options: RunCommandOptions,
  // biome-ignore lint/suspicious/noConfusingVoidType: actions without an exit code of their own return nothing
  action: (context: CommandContext) => Promise<number | undefined | void>,
): Promise<void> {
  const controller = new AbortController();
  let signalled: NodeJS.Signals | undefined;
  const json = options.json ?? false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      // Second Ctrl-C: the user wants out now. The job's own cleanup may not get to
      // run, so remove the outputs it was writing here, synchronously, then go.
      removePartialOutputsSync();
      if (json) printInterrupted(signalled);
      process.exit(signalExitCode(signalled));
    }
    signalled = signal;
    process.stderr.write(`\n${options.program}: ${signal} received, cleaning up…\n`);
    controller.abort(new Error(`interrupted by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Node ignores SIGPIPE: a reader that goes away (`qcow2 dump … | head`) shows up as
  // an EPIPE 'error' on stdout, which would otherwise end the process with a stack
  // trace, or leave a drain wait pending forever. Treat it as SIGPIPE would: stop the
  // command (it cleans up as on Ctrl-C) and end quietly with 141. Other stdout errors
  // (a full disk behind a redirection) stop it too and are reported. The listener
  // stays for the life of the process: later writes to the dead stream error again.
  let stdoutFailure: NodeJS.ErrnoException | undefined;
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (stdoutFailure) return;
    stdoutFailure = error;
    controller.abort(
      new BlockIoError(
        error.code === 'EPIPE' ? 'EPIPE' : 'EIO',
        `standard output failed: ${error.message}`,
        { path: 'standard output' },
      ),
    );
  });

  const mode = (json ? 'json' : (options.progress ?? 'auto')) as ProgressMode;
  if (!['auto', 'always', 'never', 'json'].includes(mode)) {
    printError(
      options.program,
      new UsageError(`--progress must be auto, always or never, not "${mode}"`),
      json,
    );
    process.exitCode = EXIT_USAGE;
    return;
  }
  const progress = createProgressRenderer(mode);
  const context: CommandContext = {
    signal: controller.signal,
    json,
    progress,
    printJson: (value) => process.stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`),
    // A progress bar is one line redrawn in place: clear it, or the text is glued onto it.
    print: (line) => {
      progress.close();
      (json ? process.stderr : process.stdout).write(`${line}\n`);
    },
    warn: (line) => {
      progress.close();
      process.stderr.write(`${options.program}: warning: ${line}\n`);
    },
  };

  try {
    const code = await action(context);
    progress.close();
    if (stdoutFailure) throw stdoutFailure;
    process.exitCode = signalled ? signalExitCode(signalled) : (code ?? 0);
  } catch (error) {
    progress.close();
    if (signalled) {
      // --json: the run still ends with one result object.
      if (json && !stdoutFailure) printInterrupted(signalled);
      process.exitCode = signalExitCode(signalled);
      return;
    }
    if (stdoutFailure?.code === 'EPIPE') {
      process.exitCode = EXIT_SIGPIPE;
      return;
    }
    if (stdoutFailure) {
      process.stderr.write(
        `${options.program}: error: standard output: ${stdoutFailure.message}\n`,
      );
      process.exitCode = EXIT_FAILURE;
      return;
    }
    printError(options.program, error, json, options.optionFlags, options.showCodes);
    process.exitCode = error instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** A library message with each option's remedy reworded to name the CLI's flag. */
function nameOptionFlags(message: string, flags: OptionFlags | undefined): string {
  if (flags === undefined) return message;
  let reworded = message;
  for (const [option, flag] of Object.entries(flags)) {
    reworded = reworded.replaceAll(optionRemedy(option), `use ${flag}`);
  }
  return reworded;
}

function signalExitCode(signal: NodeJS.Signals): number {
  return signal === 'SIGINT' ? EXIT_SIGINT : EXIT_SIGTERM;
}

/** The result object of a `--json` run stopped by a signal (after its cleanup). */
function printInterrupted(signal: NodeJS.Signals): void {
  const body = {
    error: 'Interrupted',
    code: 'INTERRUPTED',
    signal,
    message: `interrupted by ${signal}; partial outputs were removed`,
  };
  try {
    process.stdout.write(`${JSON.stringify(body)}\n`);
  } catch {
    // stdout is gone: nothing more to say.
  }
}

/** How a usage error reads: one line naming the problem and where to look. */
export function usageLine(program: string, message: string): string {
  return `${program}: ${message}${message.includes('--help') ? '' : ' (see --help)'}`;
}

/**
 * One line on stderr; with `--json`, also a JSON error object on stdout.
 * `optionFlags` rewords option remedies to name the CLI's flags (see RunCommandOptions).
 */
export function printError(
  program: string,
  error: unknown,
  json: boolean,
  optionFlags?: OptionFlags,
  showCodes = false,
): void {
  const message = nameOptionFlags(
    error instanceof BlockIoError
      ? error.describe()
      : error instanceof Error
        ? error.message
        : String(error),
    optionFlags,
  );
  const code = (error as { code?: unknown } | undefined)?.code;
  const withCode =
    showCodes &&
    !(error instanceof UsageError) &&
    typeof code === 'string' &&
    !message.endsWith(`[${code}]`)
      ? `${message} [${code}]`
      : message;
  process.stderr.write(
    error instanceof UsageError
      ? `${usageLine(program, message)}\n`
      : `${program}: error: ${withCode}\n`,
  );
  if (json) {
    const body =
      error instanceof BlockIoError
        ? { ...error.toJSON(), message: nameOptionFlags(error.message, optionFlags) }
        : {
            error: (error as Error)?.name ?? 'Error',
            code: (error as { code?: string })?.code,
            message,
          };
    process.stdout.write(`${JSON.stringify(body, jsonReplacer)}\n`);
  }
  if (process.env.BLOCKKIT_DEBUG && error instanceof Error && error.stack) {
    process.stderr.write(`${error.stack}\n`);
  }
}

/** JSON.stringify replacer: bigints become numbers when safe, else decimal strings. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return exactJsonInteger(value);
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  return value;
}
