import { makeTempDir, seededBytes, type TempDir } from '@x/test-utils';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQcow2, openQcow2 } from '../../src/index.js';
import { qemuImg, qemuIo } from '../support/qemu-fixtures.js';
import { expectClean, expectSameImageFile, firstDifference, guestBytes } from './support.js';

const M = 1 << 20;

type Op =
  | { kind: 'write'; offset: number; length: number; seed: number }
  | { kind: 'zero'; offset: number; length: number; unmap: boolean }
  | { kind: 'discard'; offset: number; length: number }
  | { kind: 'compressed'; cluster: number; seed: number };

function opsArbitrary(size: number, clusterSize: number) {
  const range = fc
    .tuple(
      fc.integer({ min: 0, max: size - 1 }),
      fc.integer({ min: 1, max: Math.min(size, 3 * clusterSize + 777) }),
    )
    .map(([offset, length]) => ({ offset, length: Math.min(length, size - offset) }));
  return fc.array(
    fc.oneof(
      {
        weight: 5,
        arbitrary: fc
          .tuple(range, fc.integer({ min: 1, max: 1e6 }))
          .map(([r, seed]) => ({ kind: 'write' as const, ...r, seed })),
      },
      {
        weight: 2,
        arbitrary: fc
          .tuple(range, fc.boolean())
          .map(([r, unmap]) => ({ kind: 'zero' as const, ...r, unmap })),
      },
      { weight: 1, arbitrary: range.map((r) => ({ kind: 'discard' as const, ...r })) },
      {
        weight: 1,
        arbitrary: fc
          .tuple(
            fc.integer({ min: 0, max: Math.floor(size / clusterSize) - 1 }),
            fc.integer({ min: 1, max: 1e6 }),
          )
          .map(([cluster, seed]) => ({ kind: 'compressed' as const, cluster, seed })),
      },
    ),
    { minLength: 1, maxLength: 25 },
  );
}

/** Compressible but varied bytes. */
function sample(length: number, seed: number): Buffer {
  const random = seededBytes(length, seed);
  for (let i = 0; i < length; i++) if ((random[i] as number) % 3 !== 0) random[i] = 0x61 + (i % 7);
  return random;
}

async function applyOps(
  path: string,
  model: Buffer,
  ops: Op[],
  clusterSize: number,
  backed: boolean,
) {
  const image = await openQcow2(path, { writable: true, backingPolicy: 'allow' });
  try {
    for (const op of ops) {
      if (op.kind === 'write') {
        const data = sample(op.length, op.seed);
        await image.write(op.offset, data);
        data.copy(model, op.offset);
      } else if (op.kind === 'zero') {
        await image.writeZeroes(op.offset, op.length, { unmap: op.unmap });
        model.fill(0, op.offset, op.offset + op.length);
      } else if (op.kind === 'discard') {
        await image.discard(op.offset, op.length);
        model.fill(0, op.offset, op.offset + op.length);
      } else {
        const offset = op.cluster * clusterSize;
        const mapping = await image.mapGuestRange(offset, clusterSize);
        // Like QEMU, compressed writes only go to clusters not allocated in this image.
        if (mapping.some((run) => run.type !== 'unallocated' && run.type !== 'zero-plain'))
          continue;
        if (backed && mapping.some((run) => run.type === 'unallocated')) {
          // fine: the compressed cluster hides the backing file's data
        }
        const data = sample(clusterSize, op.seed);
        await image.writeCompressed(offset, data);
        data.copy(model, offset);
      }
    }
    // Our own read path must agree with the model too.
    const back = Buffer.alloc(model.byteLength);
    await image.read(0, back);
    expect(firstDifference(back, model)).toBe(-1);
  } finally {
    await image.close();
  }
}

interface Config {
  name: string;
  size: number;
  clusterSize: number;
  version?: 2 | 3;
  refcountBits?: number;
  lazyRefcounts?: boolean;
  preallocation?: 'off' | 'metadata';
  extendedL2?: boolean;
  backing?: boolean;
}

const configs: Config[] = [
  { name: 'v3 64 KiB', size: 4 * M, clusterSize: 65536 },
  { name: 'v2 64 KiB', size: 4 * M, clusterSize: 65536, version: 2 },
  { name: 'v3 512 B, 1-bit refcounts', size: M, clusterSize: 512, refcountBits: 1 },
  { name: 'v3 4 KiB, 64-bit refcounts', size: 2 * M, clusterSize: 4096, refcountBits: 64 },
  { name: 'v3 2 MiB', size: 8 * M, clusterSize: 2 * M },
  { name: 'lazy refcounts', size: 4 * M, clusterSize: 65536, lazyRefcounts: true },
  { name: 'preallocation=metadata', size: 4 * M, clusterSize: 65536, preallocation: 'metadata' },
  { name: 'extended L2', size: 4 * M, clusterSize: 65536, extendedL2: true },
  { name: 'qcow2 backing', size: 4 * M, clusterSize: 65536, backing: true },
  { name: 'v2 with backing', size: 4 * M, clusterSize: 4096, version: 2, backing: true },
];

describe('write path: random operations against a model, checked by qemu-img', () => {
  let dir: TempDir;
  beforeAll(async () => {
    dir = await makeTempDir('qcow2-write-');
  });
  afterAll(() => dir.remove());

  for (const config of configs) {
    it(config.name, async () => {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(opsArbitrary(config.size, config.clusterSize), async (ops) => {
          run++;
          const image = dir.file(`${config.name.replace(/\W+/g, '-')}-${run}.qcow2`);
          const model = Buffer.alloc(config.size);
          let backingFile: string | undefined;
          if (config.backing) {
            backingFile = dir.file(`base-${run}-${config.clusterSize}.qcow2`);
            await qemuImg('create', '-q', '-f', 'qcow2', backingFile, String(config.size));
            await qemuIo(backingFile, `write -P 0x33 ${config.clusterSize / 2} ${config.size / 2}`);
            model.fill(0x33, config.clusterSize / 2, config.clusterSize / 2 + config.size / 2);
          }
          await createQcow2(image, {
            size: config.size,
            clusterSize: config.clusterSize,
            version: config.version,
            refcountBits: config.refcountBits,
            lazyRefcounts: config.lazyRefcounts,
            preallocation: config.preallocation,
            extendedL2: config.extendedL2,
            backingFile,
            backingFormat: backingFile ? 'qcow2' : undefined,
          });
          await applyOps(image, model, ops, config.clusterSize, config.backing ?? false);
          await expectClean(image);
          expect(firstDifference(await guestBytes(image, `${image}.raw`), model)).toBe(-1);
        }),
        { numRuns: 6, seed: 4242 },
      );
    });
  }
});

describe('write path: same requests, same file as qemu-io', () => {
  let dir: TempDir;
  beforeAll(async () => {
    dir = await makeTempDir('qcow2-write-io-');
  });
  afterAll(() => dir.remove());

  const sequences: Array<{ name: string; create: string[]; commands: string[] }> = [
    {
      name: 'sequential and overlapping writes',
      create: ['64M'],
      commands: [
        'write -P 1 0 100k',
        'write -P 2 1M 3M',
        'write -P 3 50k 200k',
        'write -P 4 63M 1M',
        'write -P 5 600M 1k'.replace('600M', '20M'),
      ],
    },
    {
      name: 'writes across L2 tables and a refcount block (512 B clusters)',
      create: ['-o', 'cluster_size=512', '64M'],
      commands: [
        'write -P 1 0 40k',
        'write -P 2 100k 300k',
        'write -P 3 1M 2M',
        'write -P 4 33M 1500',
      ],
    },
    {
      name: 'zero writes and discards (v3)',
      create: ['16M'],
      commands: [
        'write -P 1 0 4M',
        'write -z 1M 1M',
        'write -z -u 2M 512k',
        'discard 3M 64k',
        'write -z 5M 64k',
        'write -P 9 3M 4k',
      ],
    },
    {
      name: 'discard then reuse of freed clusters',
      create: ['16M'],
      commands: ['write -P 1 0 2M', 'discard 0 1M', 'write -P 2 8M 512k', 'write -P 3 100k 4k'],
    },
  ];
  for (const sequence of sequences) {
    it(sequence.name, async () => {
      const theirs = dir.file(`${sequence.name.replace(/\W+/g, '-')}-q.qcow2`);
      const ours = dir.file(`${sequence.name.replace(/\W+/g, '-')}-o.qcow2`);
      await qemuImg('create', '-q', '-f', 'qcow2', theirs, ...sequence.create);
      await qemuImg('create', '-q', '-f', 'qcow2', ours, ...sequence.create);
      await qemuIo(theirs, ...sequence.commands);
      const image = await openQcow2(ours, { writable: true });
      try {
        for (const command of sequence.commands) {
          const words = command.split(' ');
          const flags = new Set(words.filter((w) => w.startsWith('-')));
          const numbers = words.filter((w) => /^\d/.test(w)).map(parseQemuSize);
          if (words[0] === 'write' && flags.has('-z')) {
            await image.writeZeroes(numbers[0] as number, numbers[1] as number, {
              unmap: flags.has('-u'),
            });
          } else if (words[0] === 'write') {
            const [pattern, offset, length] = numbers as [number, number, number];
            await image.write(offset, Buffer.alloc(length, pattern));
          } else if (words[0] === 'discard') {
            await image.discard(numbers[0] as number, numbers[1] as number);
          }
        }
      } finally {
        await image.close();
      }
      await expectSameImageFile(ours, theirs);
    });
  }
});

function parseQemuSize(text: string): number {
  const match = /^(\d+)([kKMG]?)$/.exec(text);
  if (!match) throw new Error(`bad size ${text}`);
  const unit = { '': 1, k: 1024, K: 1024, M: 1 << 20, G: 1 << 30 }[match[2] as string] as number;
  return Number(match[1]) * unit;
}
