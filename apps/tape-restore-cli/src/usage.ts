import type { CommanderError } from 'commander';

/**
 * Usage errors end as one line, `tape-restore: <problem> (see --help)`, exit 2 (the rule
 * for every blockkit CLI); with `--json` also one JSON object on stdout. --help and
 * --version exit 0.
 */
export function usageExit(error: CommanderError): never {
  if (
    error.exitCode === 0 ||
    error.code === 'commander.helpDisplayed' ||
    error.code === 'commander.version'
  ) {
    process.exit(0);
  }
  const message = error.message.replace(/^error: /, '');
  process.stderr.write(`tape-restore: ${message} (see --help)\n`);
  if (process.argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify({ error: 'UsageError', code: 'USAGE', message })}\n`);
  }
  process.exit(2);
}

/** Collects a repeatable option's values. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
