import type { Command } from 'commander';

/** Options every command that writes or reads a stream shares. */
export interface CommonOptions {
  objectSize?: string;
  json?: boolean;
  /** -p: progress even when stderr is not a TTY. */
  p?: boolean;
  progress?: string;
  force?: boolean;
  sync: boolean;
}

export function addExamples(command: Command, examples: string[]): Command {
  return command.addHelpText(
    'after',
    `\nExamples:\n${examples.map((line) => `  ${line}`).join('\n')}\n`,
  );
}

export function objectSizeOption(command: Command): Command {
  return command.option(
    '--object-size <size>',
    'object size of the VDI the stream is for: a power of two such as 4M (the default) or 1M',
  );
}

export function progressOption(command: Command): Command {
  // -p takes no value (as qemu-img's -p): an optional value would swallow the next argument.
  return command
    .option('-p', 'progress on stderr even when it is not a TTY (same as --progress always)')
    .option(
      '--progress <mode>',
      'progress on stderr: auto (a bar on a TTY, the default), always or never',
    );
}

/** `--progress <mode>` wins; `-p` alone means always; else auto. */
export function progressMode(options: { p?: boolean; progress?: string }): string {
  return options.progress ?? (options.p ? 'always' : 'auto');
}
