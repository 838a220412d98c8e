/** The seed every fuzz test starts from, so CI runs the same cases every time. */
export const FUZZ_SEED = 20261204;

/**
 * fast-check settings for a seeded fuzz test: the fixed seed and `defaultRuns` cases in CI;
 * FUZZ_SEED and the named run-count variable (FUZZ_RUNS, FUZZ_COMPARE_RUNS …) explore
 * further by hand. Stops at the first failure so the report shows one shrunk case.
 */
export function fuzzParameters(
  runsVariable: string,
  defaultRuns: number,
): { seed: number; numRuns: number; endOnFailure: true } {
  return {
    seed: Number(process.env.FUZZ_SEED ?? FUZZ_SEED),
    numRuns: Number(process.env[runsVariable] ?? defaultRuns),
    endOnFailure: true,
  };
}

/** The failure a fuzzed operation may end in: a typed error with a stable code. */
export interface TypedFailure {
  readonly code: string;
  /** The message with file, offset and structure, as users see it. */
  describe(): string;
}

/** Generous: catches hangs and runaway loops, not slowness. */
const OPERATION_BUDGET_MS = 20_000;

/**
 * Runs the operations of a fuzz test on damaged input and holds each to the rule:
 * succeed, or fail with a typed error whose code is expected and whose message names
 * the file, within the time budget. Anything else (a TypeError, an unexpected code, a
 * hang) throws, failing the property. Counts what it saw for FUZZ_STATS=1.
 */
export class FuzzOutcomes<E extends TypedFailure> {
  readonly #isTyped: (error: unknown) => error is E;
  readonly #expectedCodes: ReadonlySet<string>;
  readonly #counts = new Map<string, number>();

  constructor(isTyped: (error: unknown) => error is E, expectedCodes: ReadonlySet<string>) {
    this.#isTyped = isTyped;
    this.#expectedCodes = expectedCodes;
  }

  /** Runs one operation: its typed error, or undefined on success. */
  async outcome(label: string, path: string, operation: () => Promise<unknown>) {
    try {
      await within(label, operation);
      return undefined;
    } catch (error) {
      if (!this.#isTyped(error) || !this.#expectedCodes.has(error.code)) {
        throw new Error(
          `${label}: untyped or unexpected error: ${(error as Error)?.stack ?? error}`,
        );
      }
      if (!error.describe().includes(path)) {
        throw new Error(`${label}: error does not name the file: ${error.describe()}`);
      }
      this.count(`${label} ${error.code}`);
      return error;
    }
  }

  count(key: string): void {
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
  }

  /** Prints the counts when FUZZ_STATS is set (call from afterAll). */
  printStats(): void {
    if (process.env.FUZZ_STATS) console.log([...this.#counts].sort().join('\n'));
  }
}

async function within<T>(label: string, operation: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${label} still running after ${OPERATION_BUDGET_MS} ms`)),
      OPERATION_BUDGET_MS,
    );
  });
  try {
    return await Promise.race([operation(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
