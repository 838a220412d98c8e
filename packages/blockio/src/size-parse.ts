import { BlockIoError } from './errors.js';

const UNITS: Record<string, number> = {
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
  p: 2 ** 50,
  e: 2 ** 60,
};
const SECTOR = 512;

/**
 * A number (decimals allowed), then optionally: `B` (bytes), `s` (512-byte
 * sectors), or K, M, G, T, P or E alone (as qemu-img writes them) or followed by
 * `B` or `iB`. Any letter case. Nothing else: `4ib` or `2sib` is a typo, not a size.
 */
const SIZE = /^(\d+(?:\.\d+)?)\s*(?:b|(s)|([kmgtpe])(?:i?b)?)?$/i;

/**
 * Parses a size or offset the way storage tools write them: `4096`, `0x1f000`,
 * `512K`, `4G`, `1.5M`, `4GiB`, `4GB`, `100B`, `2s` (512-byte sectors). Units are
 * binary (K = 1024). Throws INVALID_ARGUMENT naming the input for anything else
 * (including odd suffixes such as `4ib` or `2sib`), and UNSAFE_INTEGER above 2^53 - 1.
 */
export function parseSize(text: string, what = 'size'): number {
  const trimmed = text.trim();
  const hex = /^0x([0-9a-f]+)$/i.exec(trimmed);
  if (hex?.[1] !== undefined) return checkSafe(BigInt(`0x${hex[1]}`), text, what);
  const match = SIZE.exec(trimmed);
  const number = match?.[1];
  if (match === null || number === undefined) {
    throw new BlockIoError(
      'INVALID_ARGUMENT',
      `invalid ${what} "${text}": expected bytes, hex (0x…), sectors (2s) or a number with K, M, G, T, P or E (optionally followed by B or iB)`,
    );
  }
  const [, , sectors, unit] = match;
  const multiplier =
    unit !== undefined ? (UNITS[unit.toLowerCase()] as number) : sectors ? SECTOR : 1;
  // Exact: '1.0000000000000001K' is not 1024 bytes, whatever a double rounds it to.
  const [whole, fraction = ''] = number.split('.') as [string, string?];
  const scaled = BigInt(whole + fraction) * BigInt(multiplier);
  const scale = 10n ** BigInt(fraction.length);
  if (scaled % scale !== 0n) {
    throw new BlockIoError(
      'INVALID_ARGUMENT',
      `invalid ${what} "${text}": not a whole number of bytes`,
    );
  }
  return checkSafe(scaled / scale, text, what);
}

function checkSafe(value: bigint, text: string, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new BlockIoError('UNSAFE_INTEGER', `${what} "${text}" is beyond 2^53 - 1 bytes`);
  }
  return Number(value);
}

const SIZE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/**
 * Binary units with two decimals below 10, one below 100, none above: `1536` →
 * `1.50 KiB`, `10485760` → `10.0 MiB`; exact byte counts below 1 KiB (`1023 B`).
 */
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
