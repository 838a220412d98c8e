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
