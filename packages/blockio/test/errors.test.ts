import { describe, expect, it } from 'vitest';
import { jsonReplacer } from '../src/cli/index.js';
import {
  abortedError,
  alignUp,
  BlockIoError,
  checkedAdd,
  checkedMul,
  throwIfAborted,
} from '../src/index.js';

describe('BlockIoError.toJSON', () => {
  it('keeps a bigint offset above 2^53 exact, as a decimal string', () => {
    const offset = (1n << 60n) + 1n;
    const error = new BlockIoError('UNSAFE_INTEGER', 'too far', { path: 'x.qcow2', offset });
    expect(error.toJSON().offset).toBe('1152921504606846977');
    expect(JSON.parse(JSON.stringify(error)).offset).toBe('1152921504606846977');
    expect(JSON.parse(JSON.stringify(error)).offset).toBe(
      JSON.parse(JSON.stringify({ offset }, jsonReplacer)).offset,
    );
  });

  it('gives safe offsets as numbers, bigint or not', () => {
    expect(new BlockIoError('CORRUPT', 'x', { offset: 0x30000n }).toJSON().offset).toBe(0x30000);
    expect(new BlockIoError('CORRUPT', 'x', { offset: 0x30000 }).toJSON().offset).toBe(0x30000);
    const max = BigInt(Number.MAX_SAFE_INTEGER);
    expect(new BlockIoError('CORRUPT', 'x', { offset: max }).toJSON().offset).toBe(
      Number.MAX_SAFE_INTEGER,
    );
    expect(new BlockIoError('CORRUPT', 'x', { offset: max + 1n }).toJSON().offset).toBe(
      '9007199254740992',
    );
    expect(new BlockIoError('CORRUPT', 'x', { offset: -(1n << 60n) }).toJSON().offset).toBe(
      '-1152921504606846976',
    );
    expect(new BlockIoError('CORRUPT', 'x').toJSON().offset).toBeUndefined();
  });
});

describe('abortedError', () => {
  const aborted = (reason?: unknown) => {
    const controller = new AbortController();
    controller.abort(reason);
    return controller.signal;
  };

  it('names a string or other primitive reason', () => {
    expect(abortedError(aborted('user'), 'a.img')).toMatchObject({
      code: 'ABORTED',
      path: 'a.img',
      message: 'operation cancelled: user',
    });
    expect(abortedError(aborted(42)).message).toBe('operation cancelled: 42');
    expect(() => throwIfAborted(aborted('shutting down'))).toThrow(
      'operation cancelled: shutting down',
    );
  });

  it("names an Error reason's message, and leaves out what has none", () => {
    expect(abortedError(aborted(new Error('interrupted by SIGINT'))).message).toBe(
      'operation cancelled: interrupted by SIGINT',
    );
    expect(abortedError(aborted({ why: 'object' })).message).toBe('operation cancelled');
    expect(abortedError(aborted('')).message).toBe('operation cancelled');
    expect(abortedError(undefined).message).toBe('operation cancelled');
  });
});

describe('checkedAdd and checkedMul (offsets and sizes)', () => {
  it('compute non-negative safe results', () => {
    expect(checkedAdd(2 ** 52, 2 ** 52 - 1)).toBe(Number.MAX_SAFE_INTEGER);
    expect(checkedMul(2 ** 26, 2 ** 26)).toBe(2 ** 52);
    expect(checkedAdd(0, 0)).toBe(0);
    expect(checkedMul(0, 7)).toBe(0);
  });

  it.each([
    ['checkedAdd(-5, 1)', () => checkedAdd(-5, 1)],
    ['checkedAdd(5, -1)', () => checkedAdd(5, -1)],
    ['checkedMul(-2, 3)', () => checkedMul(-2, 3)],
    ['checkedAdd(0.5, 1)', () => checkedAdd(0.5, 1)],
    ['checkedMul(1.5, 3)', () => checkedMul(1.5, 3)],
    ['checkedAdd(NaN, 1)', () => checkedAdd(Number.NaN, 1)],
    ['alignUp(-5, 4096)', () => alignUp(-5, 4096)],
  ])('%s is OUT_OF_RANGE (negative or fractional), not a wrong answer', (_, call) => {
    expect(call).toThrow(
      expect.objectContaining({
        code: 'OUT_OF_RANGE',
        message: expect.stringContaining('non-negative integers'),
      }),
    );
  });

  it('keep UNSAFE_INTEGER for results or operands beyond 2^53 - 1', () => {
    expect(() => checkedAdd(Number.MAX_SAFE_INTEGER, 1, 'cluster end')).toThrow(
      expect.objectContaining({
        code: 'UNSAFE_INTEGER',
        message: expect.stringMatching(/^cluster end/),
      }),
    );
    expect(() => checkedMul(2 ** 30, 2 ** 30)).toThrow(
      expect.objectContaining({ code: 'UNSAFE_INTEGER' }),
    );
    expect(() => checkedAdd(2 ** 60, 0)).toThrow(
      expect.objectContaining({ code: 'UNSAFE_INTEGER' }),
    );
    expect(() => checkedMul(Number.POSITIVE_INFINITY, 0)).toThrow(
      expect.objectContaining({ code: 'UNSAFE_INTEGER' }),
    );
  });
});
