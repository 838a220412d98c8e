import { UsageError } from '@x/blockio/cli';

/**
 * e2image reads -o, -O, -b and -B with strtoull(optarg, NULL, 0): decimal, 0x hex
 * and 0-led octal after optional blanks, stopping silently at the first character
 * it does not understand ("12abc" is 12, "4K" is 4, "08" is 0, "" is 0, "-1" wraps
 * to 2^64 - 1). We take the same three forms but refuse whatever strtoull would
 * have left over, so a typo is a usage error instead of a different number.
 * Offsets and the block size may also be decimal with a binary unit (1M, 1.5M,
 * 4KiB), which e2image does not read: only after a decimal number, because "010K"
 * or "0x1E" would be ambiguous.
 */
const HEX = /^0x([0-9a-f]+)$/i;
const OCTAL = /^0[0-7]*$/;
const DECIMAL = /^[1-9][0-9]*$/;
const NOT_OCTAL = /^0[0-9]+$/;
const WITH_UNIT = /^(0|[1-9][0-9]*)(?:\.([0-9]+))?\s*([kmgtpe])(?:i?b)?$/i;
const UNIT_POWERS = 'kmgtpe';

/**
 * Parses the value of one numeric option, or throws a UsageError (exit 2) naming
 * the option (`what`, e.g. 'source offset (-o)') and the value as given.
 */
export function parseNumber(text: string, what: string, allowUnits: boolean): number {
  const fail = (reason: string) => new UsageError(`invalid ${what} "${text}": ${reason}`);
  const trimmed = text.trim();
  let value: bigint;
  const hex = HEX.exec(trimmed);
  if (hex) value = BigInt(`0x${hex[1]}`);
  else if (OCTAL.test(trimmed)) value = BigInt(`0o${trimmed}`);
  else if (DECIMAL.test(trimmed)) value = BigInt(trimmed);
  else if (NOT_OCTAL.test(trimmed)) {
    throw fail('a leading 0 makes it octal, as in e2image, and 8 and 9 are not octal digits');
  } else {
    const match = allowUnits ? WITH_UNIT.exec(trimmed) : null;
    if (!match) {
      throw fail(
        `expected a non-negative whole number: decimal, 0x hex or 0-led octal${allowUnits ? ', or decimal with a unit (K, M, G, T, P, E)' : ''}`,
      );
    }
    const [, whole = '', fraction = '', unit = ''] = match;
    // Exact: 1.0000000000000001K is not 1024 bytes, whatever a double says.
    const scaled =
      BigInt(whole + fraction) * 1024n ** BigInt(UNIT_POWERS.indexOf(unit.toLowerCase()) + 1);
    const divisor = 10n ** BigInt(fraction.length);
    if (scaled % divisor !== 0n) throw fail('not a whole number of bytes');
    value = scaled / divisor;
  }
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw fail('above 2^53 - 1, the largest number this tool handles');
  }
  return Number(value);
}
