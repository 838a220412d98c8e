import { EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import { printError, usageLine } from './run-command.js';

/** The part of commander's CommanderError we read (blockio does not depend on commander). */
export interface ParserError {
  readonly exitCode: number;
  readonly code: string;
  readonly message: string;
}

function isParserError(error: unknown): error is ParserError {
  const candidate = error as Partial<ParserError> | undefined;
  return (
    typeof candidate?.exitCode === 'number' &&
    typeof candidate.code === 'string' &&
    candidate.code.startsWith('commander.')
  );
}

/**
 * Ends the process for an error the option parser threw (`--bogus`, `-O vmdk`, a
 * missing or extra argument) the way the tools' own checks end: one line
 * `<tool>: <problem> (see --help)` on stderr, exit 2, and with `--json` on the
 * command line one JSON result object on stdout, `{"error":"UsageError","code":
 * "USAGE","message":…}` — instead of commander's whole help and exit 1. `--help`
 * and `--version` exit 0.
 *
 * An app sets commander up so that it throws instead of printing and exiting, and
 * loads this only when that happens (start-up stays small):
 *
 *   const program = new Command('tool').exitOverride().configureOutput({ outputError: () => {} });
 *   await program.parseAsync(process.argv).catch(async (error) => {
 *     const { exitOnParserError } = await import('@x/blockio/cli');
 *     exitOnParserError('tool', error);
 *   });
 *
 * (Commander copies both settings to each subcommand created after them.)
 */
export function exitOnParserError(
  program: string,
  error: unknown,
  argv: readonly string[] = process.argv,
): never {
  if (!isParserError(error)) {
    // Not the parser's: an action's bug that runCommand did not catch.
    printError(program, error, wantsJson(argv));
    process.exit(1);
  }
  if (error.exitCode === EXIT_OK) process.exit(EXIT_OK);
  // No subcommand given: commander has printed the help (to stderr); nothing to add.
  if (error.code === 'commander.help') process.exit(EXIT_USAGE);
  const message = error.message.replace(/^error: /, '').trim();
  process.stderr.write(`${usageLine(program, message)}\n`);
  if (wantsJson(argv)) {
    process.stdout.write(`${JSON.stringify({ error: 'UsageError', code: 'USAGE', message })}\n`);
  }
  process.exit(EXIT_USAGE);
}

/** `--json` among the options (before a `--` that ends them). */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/** The part of a commander `Command` that refuseEmptyArguments reads. */
export interface ParsedCommand {
  readonly processedArgs: readonly unknown[];
  readonly registeredArguments: ReadonlyArray<{ name(): string }>;
  readonly options: ReadonlyArray<{
    long?: string | undefined;
    short?: string | undefined;
    attributeName(): string;
  }>;
  opts(): Record<string, unknown>;
  error(message: string, details: { code: string; exitCode: number }): never;
}

/**
 * A commander `preAction` hook: an empty argument or option value (`''`, as an
 * unset shell variable gives) is a usage error before any work, naming which
 * one — not a path that fails after the whole job ran. Load it lazily:
 *
 *   program.hook('preAction', async (_program, command) => {
 *     (await import('@x/blockio/cli')).refuseEmptyArguments(command);
 *   });
 */
export function refuseEmptyArguments(command: ParsedCommand): void {
  command.processedArgs.forEach((value, index) => {
    const values = Array.isArray(value) ? value : [value];
    if (values.includes('')) {
      const name = command.registeredArguments[index]?.name() ?? `argument ${index + 1}`;
      command.error(`the <${name}> argument is empty`, {
        code: 'commander.emptyArgument',
        exitCode: EXIT_USAGE,
      });
    }
  });
  const values = command.opts();
  for (const option of command.options) {
    const value = values[option.attributeName()];
    if (value === '' || (Array.isArray(value) && value.includes(''))) {
      command.error(`the ${option.long ?? option.short} option is empty`, {
        code: 'commander.emptyArgument',
        exitCode: EXIT_USAGE,
      });
    }
  }
}
