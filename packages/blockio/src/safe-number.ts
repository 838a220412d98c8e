import { BlockIoError } from './errors.js';

/**
 * Offsets are JavaScript numbers up to 2^53 - 1 (8 PiB). Every 64-bit value read
 * from disk passes through `toSafeNumber`, and arithmetic on offsets goes through
 * the checked helpers, so nothing silently loses precision.
 */

export interface SafeNumberContext {
  path?: string | undefined;
  offset?: number | bigint | undefined;
  structure?: string | undefined;
}

/** Converts a 64-bit field to a number, or throws UNSAFE_INTEGER naming the field. */
export function toSafeNumber(value: bigint, what: string, context: SafeNumberContext = {}): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new BlockIoError(
      'UNSAFE_INTEGER',
      `${what} is ${value} (0x${value.toString(16)}), beyond the 2^53 - 1 bytes this tool can address`,
      { ...context, structure: context.structure ?? what },
    );
  }
  return Number(value);
}

/** Throws OUT_OF_RANGE unless `value` is a non-negative safe integer. */
export function assertOffset(value: number, what: string, context: SafeNumberContext = {}): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new BlockIoError(
      value > Number.MAX_SAFE_INTEGER ? 'UNSAFE_INTEGER' : 'OUT_OF_RANGE',
      `${what} must be a non-negative integer below 2^53, got ${value}`,
      context,
    );
  }
  return value;
}

/**
 * `a + b` for offsets and sizes: both operands non-negative safe integers (else
 * OUT_OF_RANGE, as assertOffset), the sum at most 2^53 - 1 (else UNSAFE_INTEGER).
 */
export function checkedAdd(a: number, b: number, what = 'offset'): number {
  checkOperands(a, b, '+', what);
  const sum = a + b;
  if (!Number.isSafeInteger(sum)) {
    throw new BlockIoError('UNSAFE_INTEGER', `${what} ${a} + ${b} exceeds 2^53 - 1`);
  }
  return sum;
}

/** `a * b` for offsets and sizes, checked as checkedAdd. */
export function checkedMul(a: number, b: number, what = 'offset'): number {
  checkOperands(a, b, '*', what);
  const product = a * b;
  if (!Number.isSafeInteger(product)) {
    throw new BlockIoError('UNSAFE_INTEGER', `${what} ${a} * ${b} exceeds 2^53 - 1`);
  }
  return product;
}

/**
 * A negative or fractional operand is a caller's bug, not an overflow: saying
 * UNSAFE_INTEGER for `0.5 * 3` (or returning -4 for `-5 + 1`) would send people
 * looking for a 2^53 problem that is not there.
 */
function checkOperands(a: number, b: number, operator: string, what: string): void {
  if (Number.isSafeInteger(a) && Number.isSafeInteger(b) && a >= 0 && b >= 0) return;
  const unsafe = Math.abs(a) > Number.MAX_SAFE_INTEGER || Math.abs(b) > Number.MAX_SAFE_INTEGER;
  throw new BlockIoError(
    unsafe ? 'UNSAFE_INTEGER' : 'OUT_OF_RANGE',
    `${what} ${a} ${operator} ${b}: operands must be non-negative integers below 2^53`,
  );
}

/** Rounds `value` up to a multiple of `alignment` (a positive integer). */
export function alignUp(value: number, alignment: number): number {
  const remainder = value % alignment;
  return remainder === 0 ? value : checkedAdd(value, alignment - remainder, 'aligned offset');
}

export function alignDown(value: number, alignment: number): number {
  return value - (value % alignment);
}

export function isPowerOfTwo(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0 && 2 ** Math.round(Math.log2(value)) === value;
}
