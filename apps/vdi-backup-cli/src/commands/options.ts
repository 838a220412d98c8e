import type { Command } from 'commander';

/** Options every command that writes or reads a stream shares. */
export interface CommonOptions {
  objectSize?: string;
  json?: boolean;
  progress?: boolean | string;
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
  return command.option(
    '-p, --progress [mode]',
    'progress on stderr: auto (a bar on a TTY, the default), always or never; -p alone: always',
  );
}

/** `-p` alone means always; otherwise the mode given, else auto. */
export function progressMode(progress: boolean | string | undefined): string {
  return typeof progress === 'string' ? progress : progress ? 'always' : 'auto';
}
