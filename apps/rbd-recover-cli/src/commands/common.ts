import { type Command, Option } from 'commander';

/** Options every command shares. */
export interface CommonOptions {
  workdir?: string;
  poolName?: string[];
  json?: boolean;
  progress?: string;
  perObject?: boolean;
}

export function addExamples(command: Command, examples: string[]): Command {
  return command.addHelpText(
    'after',
    `\nExamples:\n${examples.map((line) => `  ${line}`).join('\n')}\n`,
  );
}

export function workdirOption(command: Command): Command {
  return command.option(
    '--workdir <dir>',
    'where the inventory is kept (default: the current directory)',
  );
}

export function poolNameOption(command: Command): Command {
  return command.option(
    '--pool-name <id=name>',
    'name a pool whose name no OSD map gives (repeatable)',
    (value: string, previous: string[] = []) => [...previous, value],
  );
}

export function jsonOption(command: Command): Command {
  return command.option('--json', 'print the result as JSON on stdout');
}

export function progressOption(command: Command): Command {
  return command.addOption(
    new Option('--progress <mode>', 'progress bar on stderr').choices(['auto', 'always', 'never']),
  );
}

export function perObjectOption(command: Command): Command {
  return command.option(
    '--per-object',
    "choose each object's newest copy on its own (the original tool's rule) instead of one authoritative replica per PG",
  );
}

export function sshOptions(command: Command): Command {
  return command
    .option('-i, --identity <key>', 'SSH private key file (default: the agent, then ~/.ssh/id_*)')
    .option('--known-hosts <file>', 'known_hosts file (default ~/.ssh/known_hosts)')
    .option(
      '--insecure-accept-host-key',
      'accept host keys that are not in known_hosts (unsafe: anyone on the path can pose as the host)',
    )
    .option(
      '--stall-timeout <seconds>',
      'end a transfer that sends nothing for this long (default 60)',
    );
}

export function metadataOptions(command: Command): Command {
  return command
    .option(
      '--prefix <prefix>',
      'the data object prefix, where the metadata is lost (rbd_data.<id>, rb.0.…)',
    )
    .option(
      '--size <bytes>',
      'the image size, with --prefix (default: from the last object found); 10G, 0x…',
    )
    .option('--order <n>', 'object size as a power of two, with --prefix (default 22: 4 MiB)');
}
