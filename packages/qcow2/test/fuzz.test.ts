import { readFile, rm, writeFile } from 'node:fs/promises';
import { BlockIoError } from '@x/blockio';
import {
  FuzzOutcomes,
  fuzzParameters,
  makeTempDir,
  runPeer,
  runPeerOk,
  sha256File,
} from '@x/test-utils';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkImage,
  convertToRaw,
  imageInfo,
  mapImage,
  openQcow2,
  type Qcow2Image,
} from '../src/index.js';
import { type MetadataRegion, metadataRegions } from './support/metadata-regions.js';
import { qemuImage } from './support/qemu-fixtures.js';
import { deviceHash } from './support/raw-compare.js';

/**
 * Seeded random corruption of small qemu-made images: every operation on a
 * damaged copy either succeeds or rejects with a typed error (stable code,
 * naming the file); it never hangs, throws a TypeError/RangeError, or writes to
 * its input. Deterministic: fixed seeds, a bounded number of runs.
 *
 * To explore beyond the fixed cases: FUZZ_SEED=n FUZZ_RUNS=2000 FUZZ_COMPARE_RUNS=500
 * FUZZ_STATS=1 (prints the error codes seen and where we refuse what qemu-img reads).
 */
const temp = await makeTempDir('qcow2-fuzz-');
afterAll(() => temp.remove());

interface Fixture {
  name: string;
  bytes: Buffer;
  regions: MetadataRegion[];
}
const fixtures: Fixture[] = [];

beforeAll(async () => {
  const recipes: [string, Parameters<typeof qemuImage>[1]][] = [
    [
      'fuzz-v2',
      {
        size: '8M',
        options: 'compat=0.10',
        commands: ['write -P 0x11 0 1M', 'write -P 0x12 5M 64k'],
      },
    ],
    [
      'fuzz-snapshots',
      {
        size: '8M',
        commands: ['write -P 0x21 0 512k', 'write -c -P 0x22 2M 64k', 'write -z 3M 64k'],
        snapshots: ['s1', 's2'],
      },
    ],
    [
      'fuzz-compressed',
      {
        size: '8M',
        commands: ['write -c -P 0x31 0 256k', 'write -c -P 0x32 3M 128k', 'discard 64k 64k'],
      },
    ],
    [
      'fuzz-extl2',
      {
        size: '8M',
        options: 'extended_l2=on,cluster_size=32k',
        commands: ['write -P 1 4k 4k', 'write -P 2 1M 64k', 'write -z 2M 8k'],
      },
    ],
    [
      'fuzz-512',
      {
        size: '4M',
        options: 'cluster_size=512',
        commands: ['write -P 0x41 0 64k', 'write -P 0x42 1M 4k'],
      },
    ],
  ];
  for (const [name, recipe] of recipes) {
    const bytes = await readFile(await qemuImage(name, recipe));
    fixtures.push({ name, bytes, regions: metadataRegions(bytes) });
  }
});

/** Codes a damaged image may legitimately give (Qcow2Error's and blockio's). */
const EXPECTED_CODES = new Set([
  'NOT_QCOW2',
  'UNSUPPORTED',
  'ENCRYPTED',
  'CORRUPT',
  'TOO_LARGE',
  'DECOMPRESS_FAILED',
  'BACKING_DENIED',
  'MARKED_CORRUPT',
  'DIRTY',
  'SHORT_READ',
  'OUT_OF_RANGE',
  'UNSAFE_INTEGER',
]);

type Damage =
  | { kind: 'poke'; pokes: { region: number; at: number; bytes: Uint8Array }[] }
  | { kind: 'flip'; region: number; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  /** An 8-byte aligned slot set to a plausible value: a cluster of the file, flags, a small count. */
  | {
      kind: 'plausible';
      region: number;
      at: number;
      cluster: number;
      flags: number;
      small: boolean;
    };

const damageArbitrary: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({
    kind: fc.constant('poke' as const),
    pokes: fc.array(
      fc.record({
        region: fc.nat(),
        at: fc.nat(),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
      }),
      { minLength: 1, maxLength: 3 },
    ),
  }),
  fc.record({ kind: fc.constant('flip' as const), region: fc.nat(), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('plausible' as const),
    region: fc.nat(),
    at: fc.nat(),
    cluster: fc.nat(),
    flags: fc.nat(15),
    small: fc.boolean(),
  }),
);

interface DamagedCopy {
  bytes: Buffer;
  /** The header (and its extensions) is intact, so check must be able to report. */
  headerIntact: boolean;
  what: string;
}

function damage(fixture: Fixture, damage: Damage): DamagedCopy {
  const bytes = Buffer.from(fixture.bytes);
  const headerEnd = fixture.regions
    .filter((region) => region.structure.startsWith('header'))
    .reduce((end, region) => Math.max(end, region.offset + region.length), 0);
  const region = (index: number) =>
    fixture.regions[index % fixture.regions.length] as MetadataRegion;
  if (damage.kind === 'truncate') {
    const at = damage.at % bytes.length;
    return {
      bytes: bytes.subarray(0, at),
      headerIntact: at >= headerEnd,
      what: `truncated to ${at}`,
    };
  }
  if (damage.kind === 'flip') {
    const target = region(damage.region);
    const at = target.offset + (damage.at % target.length);
    bytes[at] = (bytes[at] as number) ^ (1 << damage.bit);
    return {
      bytes,
      headerIntact: at >= headerEnd,
      what: `bit ${damage.bit} flipped at ${at} (${target.structure})`,
    };
  }
  if (damage.kind === 'plausible') {
    const target = region(damage.region);
    const at = Math.min(target.offset + (damage.at % target.length), bytes.length - 8) & ~7;
    const clusterSize = 2 ** fixture.bytes.readUInt32BE(20);
    const clusters = Math.ceil(bytes.length / clusterSize) + 2;
    const value = damage.small
      ? BigInt(damage.cluster % 70_000)
      : BigInt((damage.cluster % clusters) * clusterSize) |
        (BigInt(damage.flags & 1) << 63n) |
        (BigInt((damage.flags >> 1) & 1) << 62n) |
        BigInt((damage.flags >> 2) & 1) |
        (BigInt(damage.flags >> 3) << 9n);
    bytes.writeBigUInt64BE(value, at);
    return {
      bytes,
      headerIntact: at >= headerEnd,
      what: `0x${value.toString(16)} at ${at} (${target.structure})`,
    };
  }
  const what: string[] = [];
  let headerIntact = true;
  for (const poke of damage.pokes) {
    const target = region(poke.region);
    const at = target.offset + (poke.at % target.length);
    bytes.set(poke.bytes.subarray(0, Math.max(0, bytes.length - at)), at);
    if (at < headerEnd) headerIntact = false;
    what.push(`${Buffer.from(poke.bytes).toString('hex')} at ${at} (${target.structure})`);
  }
  return { bytes, headerIntact, what: what.join(', ') };
}

const outcomes = new FuzzOutcomes(
  (error): error is BlockIoError => error instanceof BlockIoError,
  EXPECTED_CODES,
);
afterAll(() => outcomes.printStats());

async function readWholeGuest(path: string): Promise<void> {
  let image: Qcow2Image | undefined;
  try {
    image = await openQcow2(path);
    await deviceHash(image);
  } finally {
    await image?.close();
  }
}

async function mapWholeGuest(path: string): Promise<void> {
  let image: Qcow2Image | undefined;
  try {
    image = await openQcow2(path);
    await mapImage(image);
  } finally {
    await image?.close();
  }
}

let counter = 0;

/** Every operation on one damaged copy; throws (with what was done) on a broken promise. */
export async function exercise(copy: DamagedCopy): Promise<void> {
  const path = temp.file(`damaged-${counter++}.qcow2`);
  const output = `${path}.raw`;
  await writeFile(path, copy.bytes);
  try {
    await outcomes.outcome('open + read', path, () => readWholeGuest(path));
    await outcomes.outcome('info', path, () => imageInfo(path));
    await outcomes.outcome('map', path, () => mapWholeGuest(path));
    const checkError = await outcomes.outcome('check', path, () => checkImage(path));
    if (checkError && copy.headerIntact) {
      throw new Error(`check gave up on an image with an intact header: ${checkError.describe()}`);
    }
    await outcomes.outcome('convert', path, () =>
      convertToRaw(path, output, { format: 'qcow2', overwrite: true, sync: false }),
    );
    if (!(await readFile(path)).equals(copy.bytes)) throw new Error('the input file was modified');
  } catch (error) {
    throw new Error(`${copy.what}: ${(error as Error).message}`, { cause: error });
  } finally {
    await rm(output, { force: true });
    await rm(path, { force: true });
  }
}

describe('random corruption of qemu-made images', () => {
  it('gives success or a typed error for every operation (seeded)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), damageArbitrary, async (which, what) => {
        const fixture = fixtures[which % fixtures.length] as Fixture;
        await exercise({
          ...damage(fixture, what),
          what: `${fixture.name}: ${damage(fixture, what).what}`,
        });
      }),
      fuzzParameters('FUZZ_RUNS', 150),
    );
  });
});

describe('random corruption, compared with qemu-img', () => {
  it('converts a damaged image as qemu-img does whenever both succeed (seeded)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), damageArbitrary, async (which, what) => {
        const fixture = fixtures[which % fixtures.length] as Fixture;
        const copy = damage(fixture, what);
        const path = temp.file(`compare-${counter++}.qcow2`);
        await writeFile(path, copy.bytes);
        try {
          const ours = await outcomes.outcome('convert', path, () =>
            convertToRaw(path, `${path}.ours`, { format: 'qcow2', sync: false }),
          );
          const qemu = await runPeer('qemu-img', [
            'convert',
            '-f',
            'qcow2',
            '-O',
            'raw',
            path,
            `${path}.qemu`,
          ]);
          if (ours === undefined && qemu.code === 0) {
            const [a, b] = [await sha256File(`${path}.ours`), await sha256File(`${path}.qemu`)];
            if (a !== b)
              throw new Error(`${fixture.name}: ${copy.what}: output differs from qemu-img's`);
          }
          if (process.env.FUZZ_STATS) {
            const key = `compare ours=${ours?.code ?? 'ok'} qemu=${qemu.code === 0 ? 'ok' : qemu.stderr.trim().slice(0, 80)}`;
            outcomes.count(key);
            if (ours !== undefined && qemu.code === 0)
              console.log(`${fixture.name}: ${copy.what}: ${ours.describe()}`);
          }
        } finally {
          for (const file of [path, `${path}.ours`, `${path}.qemu`])
            await rm(file, { force: true });
        }
      }),
      fuzzParameters('FUZZ_COMPARE_RUNS', 40),
    );
  });
});

describe('fuzz findings, kept as regressions', () => {
  /** A copy of fixture `name` with `value` written at `offset`. */
  async function pokedCopy(name: string, offset: number, value: Buffer): Promise<string> {
    const fixture = fixtures.find((candidate) => candidate.name === name) as Fixture;
    const bytes = Buffer.from(fixture.bytes);
    value.copy(bytes, offset);
    const path = temp.file(`finding-${counter++}.qcow2`);
    await writeFile(path, bytes);
    return path;
  }
  const u64 = (value: bigint) => {
    const bytes = Buffer.alloc(8);
    bytes.writeBigUInt64BE(value);
    return bytes;
  };
  const qemuInfo = async (path: string) =>
    JSON.parse((await runPeerOk('qemu-img', ['info', '--output=json', path])).stdout);

  // Seed 4, `plausible` poke of 0x1e at 24: we showed a 30-byte guest, QEMU an empty one.
  it('rounds a virtual size that is not a multiple of 512 down, as QEMU does', async () => {
    for (const size of [30n, (8n << 20n) + 700n]) {
      const path = await pokedCopy('fuzz-v2', 24, u64(size));
      const info = await imageInfo(path);
      expect(info['virtual-size']).toBe((await qemuInfo(path))['virtual-size']);
      expect(info['virtual-size']).toBe(Number(size - (size % 512n)));
      await convertToRaw(path, `${path}.ours`, { sync: false });
      await runPeerOk('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', path, `${path}.qemu`]);
      expect(await sha256File(`${path}.ours`)).toBe(await sha256File(`${path}.qemu`));
    }
  });

  // Seed 5, poke of 0x63f5 at 8: backing_file_offset set, backing_file_size 0.
  it('takes a zero-length backing file name as no backing file, as QEMU does', async () => {
    const path = await pokedCopy('fuzz-compressed', 8, u64(0x63f5n));
    const info = await imageInfo(path);
    expect(info['backing-filename']).toBe(undefined);
    expect((await qemuInfo(path))['backing-filename']).toBe(undefined);
    await convertToRaw(path, `${path}.ours`, { sync: false });
    await runPeerOk('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', path, `${path}.qemu`]);
    expect(await sha256File(`${path}.ours`)).toBe(await sha256File(`${path}.qemu`));
  });
});
