import { UsageError } from '@x/blockio/cli';
import { parseNumber } from './number-option.js';

/** Options as commander parses them (e2image's single letters, plus --json/--progress). */
export interface CliOptions {
  r?: boolean;
  Q?: boolean;
  a?: boolean;
  s?: boolean;
  p?: boolean;
  c?: boolean;
  n?: boolean;
  f?: boolean;
  I?: boolean;
  b?: string;
  B?: string;
  o?: string;
  O?: string;
  json?: boolean;
  progress?: string;
  backing?: string;
  /** --force: replace an existing output file (e2image overwrites it silently). */
  force?: boolean;
  /** commander's --no-sync: false when given. */
  sync?: boolean;
}

export type BackingPolicy = 'deny' | 'allow' | 'ignore';

export type ImageMode = 'raw' | 'qcow2' | 'normal';

export type Plan =
  | {
      kind: 'image';
      mode: ImageMode;
      source: string;
      /** "-" for stdout (raw only). */
      output: string;
      allData: boolean;
      scramble: boolean;
      superblock: number | undefined;
      blockSize: number | undefined;
      sourceOffset: number;
      /**
       * -o was given, even as 0: with a QCOW2 source it means "the filesystem
       * inside it", never a conversion of the whole image.
       */
      sourceOffsetGiven: boolean;
      destinationOffset: number;
      check: boolean;
      dryRun: boolean;
      force: boolean;
      /** --force: an existing output may be replaced (or a block device written). */
      overwrite: boolean;
      backingPolicy: BackingPolicy;
      /** fsync new output files before renaming them into place (not with --no-sync). */
      sync: boolean;
    }
  | { kind: 'install'; device: string; image: string; force: boolean }
  | {
      kind: 'move';
      file: string;
      sourceOffset: number;
      destinationOffset: number;
      superblock: number | undefined;
      blockSize: number | undefined;
      dryRun: boolean;
      force: boolean;
    };

/**
 * Turns e2image's command line into what to do, with e2image's rules (and its
 * messages) for which options go together.
 */
export function planFromArguments(args: string[], options: CliOptions): Plan {
  if (options.r && options.Q) throw new UsageError('-r and -Q cannot be combined');
  const mode: ImageMode = options.r ? 'raw' : options.Q ? 'qcow2' : 'normal';
  const superblock =
    options.b === undefined ? undefined : parseNumber(options.b, 'superblock (-b)', false);
  const blockSize =
    options.B === undefined ? undefined : parseNumber(options.B, 'block size (-B)', true);
  const sourceOffset =
    options.o === undefined ? 0 : parseNumber(options.o, 'source offset (-o)', true);
  const destinationOffset =
    options.O === undefined ? 0 : parseNumber(options.O, 'destination offset (-O)', true);
  const force = options.f ?? false;

  if (options.I) {
    if (args.length !== 2)
      throw new UsageError('-I needs a device and an image file: x-e2image -I device image-file');
    if (options.r || options.Q) throw new UsageError('Raw and qcow2 images cannot be installed');
    return { kind: 'install', device: args[0] as string, image: args[1] as string, force };
  }
  const moveMode = args.length === 1 && (sourceOffset !== 0 || destinationOffset !== 0);
  if (!moveMode && args.length !== 2) {
    throw new UsageError('expected a source and an image file (see --help)');
  }
  if (options.a && mode === 'normal') {
    throw new UsageError('-a option can only be used with raw or QCOW2 images.');
  }
  if (superblock !== undefined && superblock !== 0 && mode === 'normal') {
    throw new UsageError('-b option can only be used with raw or QCOW2 images.');
  }
  if (superblock && !blockSize) {
    throw new UsageError(
      '-b needs -B: the backup superblock number is counted in blocks of that size',
    );
  }
  if ((sourceOffset || destinationOffset) && mode !== 'raw') {
    throw new UsageError('Offsets are only allowed with raw images.');
  }
  if (moveMode) {
    if (mode !== 'raw') throw new UsageError('Move mode is only allowed with raw images.');
    if (!options.a) throw new UsageError('Move mode requires all data mode.');
    if (options.s) throw new UsageError('-s cannot be used when moving a filesystem in place');
    return {
      kind: 'move',
      file: args[0] as string,
      sourceOffset,
      destinationOffset,
      superblock,
      blockSize,
      dryRun: options.n ?? false,
      force,
    };
  }
  const output = args[1] as string;
  if (output === '-') {
    if (mode === 'qcow2') throw new UsageError('QCOW2 image can not be written to the stdout!');
    if (mode === 'normal')
      throw new UsageError('a normal image cannot be written to stdout; use -r');
    if (options.c) throw new UsageError('The -c option not supported when writing to stdout');
    if (options.json)
      throw new UsageError('--json cannot be used with "-" as output: stdout carries the image');
  }
  if (options.c && mode !== 'raw') throw new UsageError('The -c option only supported in raw mode');
  return {
    kind: 'image',
    mode,
    source: args[0] as string,
    output,
    allData: options.a ?? false,
    scramble: options.s ?? false,
    superblock: superblock || undefined,
    blockSize,
    sourceOffset,
    sourceOffsetGiven: options.o !== undefined,
    destinationOffset,
    check: options.c ?? false,
    dryRun: options.n ?? false,
    force,
    overwrite: options.force ?? false,
    backingPolicy: (options.backing ?? 'allow') as BackingPolicy,
    sync: options.sync ?? true,
  };
}
