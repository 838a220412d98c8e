import type { Command } from 'commander';
import { addExamples, backingOption } from './read-options.js';

interface MapOptions {
  json?: boolean;
  backing: 'allow' | 'deny' | 'ignore';
  snapshot?: string;
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
    .argument('<image>', 'qcow2 image')
    .option('--json', 'print a JSON array on stdout')
    .option('--snapshot <id-or-name>', 'map an internal snapshot instead of the active state')
    .addOption(backingOption())
    .action((image: string, options: MapOptions) => runMap(image, options));
  addExamples(command, [
    'qcow2 map disk.qcow2',
    "qcow2 map --json overlay.qcow2 | jq '[.[] | select(.depth == 0 and .data)]'",
  ]);
}

async function runMap(image: string, options: MapOptions): Promise<void> {
  const { runCommand } = await import('@x/blockio/cli');
  await runCommand({ program: 'qcow2', json: options.json }, async (context) => {
    const { mapEntries, openQcow2 } = await import('@x/qcow2/read');
    const device = await openQcow2(image, {
      backingPolicy: options.backing,
      snapshot: options.snapshot,
    });
    try {
      const entries = mapEntries(device, { signal: context.signal });
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
