import { BlockIoError } from './errors.js';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  s: 512,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
  p: 2 ** 50,
  e: 2 ** 60,
};

/**
 * Parses a size or offset the way storage tools write them: `4096`, `0x1f000`,
 * `512K`, `4G`, `1.5M`, `4GiB`, `2s` (512-byte sectors). Units are binary.
 * Throws INVALID_ARGUMENT for anything else and UNSAFE_INTEGER above 2^53 - 1.
 */
export function parseSize(text: string, what = 'size'): number {
  const trimmed = text.trim();
  const hex = /^0x([0-9a-f]+)$/i.exec(trimmed);
  if (hex?.[1] !== undefined) return checkSafe(BigInt(`0x${hex[1]}`), text, what);
  const match = /^(\d+(?:\.\d+)?)\s*([bskmgtpe]?)(?:i?b)?$/i.exec(trimmed);
  const unit = match?.[2]?.toLowerCase();
  if (!match?.[1] || unit === undefined || UNITS[unit] === undefined) {
    throw new BlockIoError(
      'INVALID_ARGUMENT',
      `invalid ${what} "${text}": expected bytes, hex (0x…) or a number with K, M, G, T, P or E`,
    );
  }
  const multiplier = UNITS[unit] as number;
  if (match[1].includes('.')) {
    const value = Number(match[1]) * multiplier;
    if (!Number.isInteger(value)) {
      throw new BlockIoError(
        'INVALID_ARGUMENT',
        `invalid ${what} "${text}": not a whole number of bytes`,
      );
    }
    return checkSafe(BigInt(value), text, what);
  }
  return checkSafe(BigInt(match[1]) * BigInt(multiplier), text, what);
}

function checkSafe(value: bigint, text: string, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new BlockIoError('UNSAFE_INTEGER', `${what} "${text}" is beyond 2^53 - 1 bytes`);
  }
  return Number(value);
}

const SIZE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/** `1536` → `1.5 KiB`; exact byte counts below 1 KiB. */
export function formatSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < SIZE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${SIZE_UNITS[unit]}`;
}
