// blockio benchmark: sparse copy of a large sparse file, ours against cp and dd.
// Protocol and method: tools/bench/README.md.
import { createCipheriv } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCases } from '@x/bench';
import { cachedFixture } from '@x/test-utils';

const here = dirname(fileURLToPath(import.meta.url));
const packageRoot = join(here, '..');
const MiB = 2 ** 20;
const GiB = 2 ** 30;

/**
 * A sparse file of `size` bytes holding `dataBytes` of incompressible data in 1 MiB
 * runs at random (seeded) 1 MiB-aligned places; runs that land side by side merge,
 * as they would in a real image. Made once and cached under .fixtures/.
 */
async function sparseInput(size, dataBytes) {
  const recipe = `sparse input v1: ${size} bytes, ${dataBytes} data in 1 MiB runs, seed 12345`;
  const directory = await cachedFixture(
    packageRoot,
    `bench-sparse-${size / GiB}g`,
    recipe,
    async (dir) => {
      const slots = size / MiB;
      const order = Array.from({ length: slots }, (_, index) => index);
      let state = 12345;
      const random = () => {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        return (state >>> 0) / 2 ** 32;
      };
      for (let i = slots - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [order[i], order[j]] = [order[j], order[i]];
      }
      const chosen = order.slice(0, dataBytes / MiB).sort((a, b) => a - b);
      const keystream = createCipheriv('aes-128-ctr', Buffer.alloc(16, 1), Buffer.alloc(16, 2));
      const zeros = Buffer.alloc(MiB);
      const handle = await open(join(dir, 'input.img'), 'w');
      try {
        await handle.truncate(size);
        for (const slot of chosen) await handle.write(keystream.update(zeros), 0, MiB, slot * MiB);
        await handle.sync();
      } finally {
        await handle.close();
      }
    },
  );
  return join(directory, 'input.img');
}

async function prepare(settings, durable) {
  const [size, data] = settings.quick ? [GiB, 256 * MiB] : [8 * GiB, 2 * GiB];
  const input = await sparseInput(size, data);
  const outputs = join(packageRoot, '.fixtures', 'bench-output');
  mkdirSync(outputs, { recursive: true });
  const out = (name) => join(outputs, name);
  const oursArgv = [process.execPath, join(here, 'sparse-copy.mjs'), input, out('ours.img')];
  const label = `${size / GiB} GiB with ${data / MiB} MiB data`;
  return {
    pkg: '@x/blockio',
    ours: {
      name: `copy (${label})`,
      argv: durable ? oursArgv : [...oursArgv, '--no-sync'],
      outputs: [out('ours.img')],
    },
    peers: [
      {
        name: durable ? 'cp --sparse=always && sync' : 'cp --sparse=always',
        argv: durable
          ? ['sh', '-c', 'cp --sparse=always "$1" "$2" && sync "$2"', 'sh', input, out('cp.img')]
          : ['cp', '--sparse=always', input, out('cp.img')],
        outputs: [out('cp.img')],
      },
      {
        name: durable ? 'dd conv=sparse,fsync bs=1M' : 'dd conv=sparse bs=1M',
        argv: [
          'dd',
          `if=${input}`,
          `of=${out('dd.img')}`,
          `conv=${durable ? 'sparse,fsync' : 'sparse'}`,
          'bs=1M',
          'status=none',
        ],
        outputs: [out('dd.img')],
        target: null,
      },
    ],
    target: { ratio: 1.2, peakRssKiB: 100 * 1024 },
  };
}

await runCases([
  // Like for like with cp's defaults: nobody fsyncs.
  { name: 'sparse-copy', prepare: (settings) => prepare(settings, false) },
  // What our CLIs really do (fsync before the rename), against peers told to do the same.
  { name: 'sparse-copy-durable', prepare: (settings) => prepare(settings, true) },
]);
