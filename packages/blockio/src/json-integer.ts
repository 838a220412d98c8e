/**
 * A 64-bit integer as JSON can carry it exactly: a number while it is a safe
 * integer, else its decimal string. `JSON.stringify` throws on a bigint, and
 * `Number()` of one above 2^53 silently rounds: exactly the offsets an
 * UNSAFE_INTEGER error is about, so neither will do.
 */
export function exactJsonInteger(value: bigint): number | string {
  return value <= MAX_SAFE && value >= MIN_SAFE ? Number(value) : value.toString();
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
