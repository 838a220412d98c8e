import { BlockIoError, optionRemedy } from '../errors.js';
import { exactJsonInteger } from '../json-integer.js';
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
  /** Prints a line for people on stderr (when `--json`) or stdout (otherwise). */
  print(line: string): void;
  /** Prints a warning on stderr. */
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
}

/** Library option name → the CLI flag that sets it. */
export type OptionFlags = Readonly<Record<string, string>>;

/** An error that means "the command line was wrong": exit code 2. */
export class UsageError extends Error {
  readonly code = 'USAGE';
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
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      // Second Ctrl-C: the user wants out now.
      process.exit(signal === 'SIGINT' ? EXIT_SIGINT : EXIT_SIGTERM);
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

  const json = options.json ?? false;
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
    print: (line) => (json ? process.stderr : process.stdout).write(`${line}\n`),
    warn: (line) => process.stderr.write(`${options.program}: warning: ${line}\n`),
  };

  try {
    const code = await action(context);
    progress.close();
    if (stdoutFailure) throw stdoutFailure;
    process.exitCode = signalled ? signalExitCode(signalled) : (code ?? 0);
  } catch (error) {
    progress.close();
    if (signalled) {
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
    printError(options.program, error, json, options.optionFlags);
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

/**
 * One line on stderr; with `--json`, also a JSON error object on stdout.
 * `optionFlags` rewords option remedies to name the CLI's flags (see RunCommandOptions).
 */
export function printError(
  program: string,
  error: unknown,
  json: boolean,
  optionFlags?: OptionFlags,
): void {
  const message = nameOptionFlags(
    error instanceof BlockIoError
      ? error.describe()
      : error instanceof Error
        ? error.message
        : String(error),
    optionFlags,
  );
  process.stderr.write(`${program}: error: ${message}\n`);
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
