import { setFlagsFromString } from 'node:v8';
import { Command } from 'commander';
import { registerCheck } from './commands/check.js';
import { registerCompare } from './commands/compare.js';
import { registerConvert } from './commands/convert.js';
import { registerCreate } from './commands/create.js';
import { registerDump } from './commands/dump.js';
import { registerInfo } from './commands/info.js';
import { registerMap } from './commands/map.js';
import { registerPoke } from './commands/poke.js';
import { registerRepair } from './commands/repair.js';
import { registerResize } from './commands/resize.js';
import { registerSetFeature } from './commands/set-feature.js';
import { registerSnapshot } from './commands/snapshot.js';
import { registerUndo } from './commands/undo.js';

// Most of our jobs are short (0.3-1 s), and V8's optimising compiler, running on the
// second core, was compiling functions that had run a few milliseconds. A 16x budget
// before a function is optimised (as x-e2image sets) keeps that for code that stays hot.
// Measured, whole processes, medians of 5: check of a 1 TiB image CPU 0.47 -> 0.33 s and
// RSS 58 -> 55 MiB; convert -O raw of 4 GiB/1 GiB wall 0.56 -> 0.51 s; a 2.5 s convert
// of a deflate-compressed image is not slower.
// Node 20's V8 (11) only: V8 12 (Node 22+) tiers up by invocation counts instead and
// prints "unrecognized flag" on stderr for this one, on every run.
if (Number.parseInt(process.versions.v8, 10) <= 11)
  setFlagsFromString('--interrupt-budget=1081344');

// Each command module only declares its options here; the code that does the
// work is imported when the command runs, so start-up stays small.
const program = new Command('qcow2')
  .description('Inspect, convert, check, dump and repair QCOW2 disk images.')
  .version('0.1.0', '-V, --version')
  // Parser errors are thrown, not printed: exitOnParserError prints them as one line
  // (and a JSON object with --json) and exits 2. Subcommands inherit both settings.
  .exitOverride()
  .configureOutput({ outputError: () => {} })
  // An empty argument ('' from an unset variable) is a usage error before any work.
  .hook('preAction', async (_program, command) => {
    const { refuseEmptyArguments } = await import('@x/blockio/cli');
    refuseEmptyArguments(command);
  });

for (const register of [
  registerInfo,
  registerCreate,
  registerResize,
  registerMap,
  registerConvert,
  registerCompare,
  registerCheck,
  registerDump,
  registerRepair,
  registerUndo,
  registerSnapshot,
  registerSetFeature,
  registerPoke,
]) {
  register(program);
}

program.addHelpText(
  'after',
  '\nqemu-img habits work: --output=json is --json, --output=human the default.\n',
);

const argv = qemuImgHabits(process.argv);
await program.parseAsync(argv).catch(async (error: unknown) => {
  // --help and --version: done. Exit now, before a reader that went away (`--help | head`)
  // turns the help text's EPIPE into an unhandled 'error' event while blockio loads.
  if ((error as { exitCode?: unknown }).exitCode === 0) process.exit(0);
  const { exitOnParserError } = await import('@x/blockio/cli');
  exitOnParserError('qcow2', error, argv);
});

/**
 * qemu-img's habits: `--output=json|human` (or `--output json`) as our `--json` (or
 * nothing); `resize IMAGE -1G` (commander would take `-1G` for an option): a negative
 * size goes after `--`, where it is an argument.
 */
function qemuImgHabits(argv: string[]): string[] {
  const out: string[] = [];
  const negativeSizes: string[] = [];
  const isResize = argv.slice(2).find((arg) => !arg.startsWith('-')) === 'resize';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const value = arg.startsWith('--output=')
      ? arg.slice('--output='.length)
      : arg === '--output' && (argv[i + 1] === 'json' || argv[i + 1] === 'human')
        ? argv[++i]
        : undefined;
    if (isResize && /^-\d/.test(arg)) negativeSizes.push(arg);
    else if (value === undefined) out.push(arg);
    else if (value === 'json') out.push('--json');
    else if (value !== 'human') out.push(arg);
  }
  if (negativeSizes.length === 0) return out;
  const separator = out.indexOf('--');
  return separator < 0
    ? [...out, '--', ...negativeSizes]
    : [...out.slice(0, separator + 1), ...negativeSizes, ...out.slice(separator + 1)];
}
