import type { Command } from 'commander';

const HELP = `
Overwrites 1, 2, 4 or 8 bytes (default 8) at a byte offset of the image file
with a big-endian value, after saving the old bytes to the undo log. For hand
repairs of single table entries, e.g. pointing a corrupt L2 entry elsewhere
(find entry offsets with qcow2 check --mode error or qcow2 dump --l2).
Requires --force; without it, shows the current bytes and what would change.

Exit codes: 0 written, 1 failed (e.g. an offset past the end of the file:
OUT_OF_RANGE), 2 usage error (including a missing --force, or a --value
wider than --width).

Examples:
  qcow2 poke disk.qcow2 --offset 0x40008 --value 0x8000000000060000 --force
  qcow2 poke disk.qcow2 --offset 0x40008 --value 0                   (shows, writes nothing)
  qcow2 undo disk.qcow2`;

export interface PokeCliOptions {
  offset: string;
  value: string;
  width: string;
  force?: boolean;
  undoLog?: string;
  json?: boolean;
}

export function registerPoke(program: Command): void {
  program
    .command('poke')
    .description('overwrite bytes at an offset, big-endian, with an undo log (hand repairs)')
    .argument('<image>', 'the qcow2 image')
    .requiredOption('--offset <offset>', 'byte offset in the image file (decimal or 0x hex)')
    .requiredOption('--value <value>', 'value to write, big-endian (decimal or 0x hex)')
    .option('--width <bytes>', 'bytes to write: 1, 2, 4 or 8', '8')
    .option('-f, --force', 'really write')
    .option('--undo-log <path>', 'undo log to write (default <image>.qcow2-undo)')
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText('after', HELP)
    .action(async (image: string, options: PokeCliOptions) => {
      const { runCommand, UsageError } = await import('@x/blockio/cli');
      await runCommand({ program: 'qcow2', json: options.json }, async (context) => {
        const parse = (text: string, what: string): bigint => {
          try {
            if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(text.trim())) throw new Error();
            return BigInt(text.trim());
          } catch {
            throw new UsageError(`${what} must be a decimal or 0x-hex integer, not "${text}"`);
          }
        };
        const offset = parse(options.offset, '--offset');
        const value = parse(options.value, '--value');
        const width = Number(options.width);
        if (![1, 2, 4, 8].includes(width)) throw new UsageError('--width must be 1, 2, 4 or 8');
        if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw new UsageError('--offset is too large');
        if (value >= 1n << BigInt(width * 8)) {
          throw new UsageError(`--value ${options.value} does not fit --width ${width} bytes`);
        }
        const { pokeImage } = await import('@x/qcow2/diagnosis');
        const result = await pokeImage(image, {
          offset: Number(offset),
          value,
          width: width as 1 | 2 | 4 | 8,
          dryRun: !options.force,
          undoLog: options.undoLog,
        });
        if (options.json) {
          if (options.force) context.printJson(result);
        } else {
          context.print(
            `${result.offset} (0x${result.offset.toString(16)}): ${result.before} -> ${result.after}`,
          );
          if (result.undoLog) context.print(`Undo log: ${result.undoLog}`);
        }
        if (!options.force)
          throw new UsageError('not written: add --force to overwrite these bytes');
      });
    });
}
