import type { CreateQcow2Options } from '@x/qcow2/convert';

/*
 * qemu-img's `-o` creation options for qcow2 (`-o cluster_size=4k,compat=0.10`,
 * repeatable), read into createQcow2's options. Loaded by create and convert
 * when they run, never at start-up.
 */

/** The `-o` names this tool knows, in the order `qemu-img create` prints them. */
const PRINT_ORDER = [
  'cluster_size',
  'extended_l2',
  'preallocation',
  'compression_type',
  'size',
  'compat',
  'backing_file',
  'backing_fmt',
  'data_file',
  'data_file_raw',
  'lazy_refcounts',
  'refcount_bits',
] as const;

export type ImageOptionName = (typeof PRINT_ORDER)[number];

export interface ParsedImageOptions {
  /** createQcow2's options (size only when `-o size=` gave one). */
  create: CreateQcow2Options;
  /** The options as given (last one wins), by name. */
  given: Partial<Record<ImageOptionName, string>>;
}

type Fail = (message: string) => Error;

/** Splits one `-o` argument at commas (`,,` is a literal comma, as in qemu's option syntax). */
function splitOptionList(text: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const char = text[i] as string;
    if (char === ',' && text[i + 1] === ',') {
      current += ',';
      i++;
    } else if (char === ',') {
      parts.push(current);
      current = '';
    } else current += char;
  }
  parts.push(current);
  return parts.filter((part) => part !== '');
}

function parseBool(name: string, value: string, fail: Fail): boolean {
  const lower = value.toLowerCase();
  if (['on', 'yes', 'true', 'y'].includes(lower)) return true;
  if (['off', 'no', 'false', 'n'].includes(lower)) return false;
  throw fail(`-o ${name}: expected on or off, not "${value}"`);
}

/**
 * Reads every `-o` argument. `parseSize` reads sizes as qemu-img does (`64k`, `2M`).
 * Unknown names, bad values and options this tool cannot honour (encryption,
 * falloc/full preallocation) are usage errors through `fail`.
 */
export function parseImageOptions(
  texts: readonly string[],
  parseSize: (text: string, what: string) => number,
  fail: Fail,
): ParsedImageOptions {
  const given: Partial<Record<ImageOptionName, string>> = {};
  for (const text of texts) {
    for (const part of splitOptionList(text)) {
      const equals = part.indexOf('=');
      const name = equals < 0 ? part : part.slice(0, equals);
      const value = equals < 0 ? 'on' : part.slice(equals + 1);
      if (name === 'help' || name === '?') {
        throw fail(`-o options: ${PRINT_ORDER.join(', ')}`);
      }
      if (name.startsWith('encrypt')) throw fail('-o: encrypted images are not supported');
      if (!(PRINT_ORDER as readonly string[]).includes(name)) {
        throw fail(`-o: unknown option "${name}" (known: ${PRINT_ORDER.join(', ')})`);
      }
      given[name as ImageOptionName] = value;
    }
  }
  const create: CreateQcow2Options = {};
  for (const [name, value] of Object.entries(given) as [ImageOptionName, string][]) {
    switch (name) {
      case 'compat':
        if (value === '0.10' || value === 'v2') create.version = 2;
        else if (value === '1.1' || value === 'v3') create.version = 3;
        else throw fail(`-o compat: expected 0.10 (v2) or 1.1 (v3), not "${value}"`);
        break;
      case 'cluster_size':
        create.clusterSize = parseSize(value, '-o cluster_size');
        break;
      case 'refcount_bits': {
        if (!/^\d+$/.test(value)) throw fail(`-o refcount_bits: expected a number, not "${value}"`);
        create.refcountBits = Number(value);
        break;
      }
      case 'compression_type':
        if (value !== 'zlib' && value !== 'zstd') {
          throw fail(`-o compression_type: expected zlib or zstd, not "${value}"`);
        }
        create.compressionType = value;
        break;
      case 'extended_l2':
        create.extendedL2 = parseBool(name, value, fail);
        break;
      case 'lazy_refcounts':
        create.lazyRefcounts = parseBool(name, value, fail);
        break;
      case 'preallocation':
        if (value === 'falloc' || value === 'full') {
          throw fail(`-o preallocation=${value} is not supported (off and metadata are)`);
        }
        if (value !== 'off' && value !== 'metadata') {
          throw fail(`-o preallocation: expected off or metadata, not "${value}"`);
        }
        create.preallocation = value;
        break;
      case 'backing_file':
        create.backingFile = value;
        break;
      case 'backing_fmt':
        if (value !== 'qcow2' && value !== 'raw') {
          throw fail(`-o backing_fmt: expected qcow2 or raw, not "${value}"`);
        }
        create.backingFormat = value;
        break;
      case 'data_file':
        create.dataFile = value;
        break;
      case 'data_file_raw':
        create.dataFileRaw = parseBool(name, value, fail);
        break;
      case 'size':
        create.size = parseSize(value, '-o size');
        break;
    }
  }
  return { create, given };
}

/**
 * The options line `qemu-img create` prints ("fmt=qcow2 cluster_size=65536 …"):
 * defaults for the always-shown options, the rest only when given.
 */
export function describeImageOptions(
  given: Partial<Record<ImageOptionName, string>>,
  create: CreateQcow2Options,
  size: number,
): string {
  const shown: Record<string, string | undefined> = {
    cluster_size: String(create.clusterSize ?? 65536),
    extended_l2: create.extendedL2 ? 'on' : 'off',
    preallocation: given.preallocation,
    compression_type: create.compressionType ?? 'zlib',
    size: String(size),
    backing_file: create.backingFile,
    backing_fmt: create.backingFormat,
    data_file: create.dataFile,
    data_file_raw:
      given.data_file_raw === undefined ? undefined : create.dataFileRaw ? 'on' : 'off',
    compat: given.compat,
    lazy_refcounts: create.lazyRefcounts ? 'on' : 'off',
    refcount_bits: String(create.refcountBits ?? 16),
  };
  const parts = ['fmt=qcow2'];
  for (const name of PRINT_ORDER) {
    const value = shown[name];
    if (value !== undefined) parts.push(`${name}=${value}`);
  }
  return parts.join(' ');
}
