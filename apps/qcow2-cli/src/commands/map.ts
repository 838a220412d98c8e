import { type Command, Option } from 'commander';
import { addExamples, backingOption } from './read-options.js';

interface MapOptions {
  json?: boolean;
  backing: 'allow' | 'deny' | 'ignore';
  snapshot?: string;
  format?: 'qcow2' | 'raw';
  startOffset?: string;
  maxLength?: string;
}

export function registerMap(program: Command): void {
  const command = program
    .command('map')
    .summary('show which runs of the disk hold data, zeros or nothing, and where')
    .description(
      'List merged runs of the virtual disk: data, zero or unallocated, the depth in the ' +
        'backing chain that provides them (0 = this image), the host offset and the file ' +
        'holding them. --json prints the same array as `qemu-img map --output=json`, with ' +
        '"filename" and "compressed" added. Unlike qemu-img, the human form also lists ' +
        'compressed runs instead of giving up.',
    )
    .argument('<image>', 'qcow2 or raw image')
    .option('--json', 'print a JSON array on stdout')
    .option('-s, --snapshot <id-or-name>', 'map an internal snapshot instead of the active state')
    .addOption(
      new Option('-f, --format <format>', 'image format (default: detected by its magic)').choices([
        'qcow2',
        'raw',
      ]),
    )
    .option('--start-offset <offset>', 'map from this guest offset (K, M, G suffixes, hex)')
    .option('--max-length <length>', 'map at most this many bytes')
    .addOption(backingOption())
    .action((image: string, options: MapOptions) => runMap(image, options));
  addExamples(command, [
    'qcow2 map disk.qcow2',
    "qcow2 map --json overlay.qcow2 | jq '[.[] | select(.depth == 0 and .data)]'",
    'qcow2 map --start-offset 1G --max-length 64M disk.qcow2',
    'qcow2 map -s before-upgrade disk.qcow2',
  ]);
}

async function runMap(image: string, options: MapOptions): Promise<void> {
  const { runCommand, sizeOption } = await import('@x/blockio/cli');
  await runCommand({ program: 'qcow2', json: options.json }, async (context) => {
    const start =
      options.startOffset === undefined ? 0 : sizeOption('--start-offset')(options.startOffset);
    const maxLength =
      options.maxLength === undefined ? undefined : sizeOption('--max-length')(options.maxLength);
    const { mapEntries, mapRawEntries, openInput, Qcow2Image } = await import('@x/qcow2/read');
    const { device } = await openInput(image, {
      format: options.format,
      backingPolicy: options.backing,
      snapshot: options.snapshot,
      io: 'sync',
    });
    try {
      const offset = Math.min(start, device.size);
      const length = Math.min(maxLength ?? device.size, device.size - offset);
      const { displayPath } = await import('./map-format.js');
      const shown = displayPath(image);
      const mapOptions = { signal: context.signal, range: { offset, length } };
      const entries = renamed(
        device instanceof Qcow2Image
          ? mapEntries(device, mapOptions)
          : mapRawEntries(device, mapOptions),
        shown,
      );
      if (context.json) {
        // Streamed one entry per line: a 1 TiB image can have millions of runs.
        process.stdout.write('[');
        let first = true;
        for await (const entry of entries) {
          process.stdout.write(`${first ? '' : ',\n'}${JSON.stringify(entry)}`);
          first = false;
        }
        process.stdout.write(']\n');
        return;
      }
      const { formatMapHeader, formatMapEntry } = await import('./map-format.js');
      context.print(formatMapHeader());
      for await (const entry of entries) context.print(formatMapEntry(entry));
    } finally {
      await device.close();
    }
  });
}

/** The entries with their files named in one style (see displayPath). */
async function* renamed<T extends { filename?: string }>(
  entries: AsyncIterable<T>,
  shown: (path: string) => string,
): AsyncIterable<T> {
  for await (const entry of entries) {
    yield entry.filename === undefined ? entry : { ...entry, filename: shown(entry.filename) };
  }
}
