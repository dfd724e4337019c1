// Shared by the fuzz tests: the run count and seed (deterministic in CI; HOPSCOPE_FUZZ_RUNS for a longer run,
// HOPSCOPE_FUZZ_SEED to explore other inputs or replay one reported by a failure), and the one rule every
// target follows: each case ends in a valid result or a clear typed error, never anything else.
import assert from 'node:assert/strict';
import type * as fc from 'fast-check';

function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name}=${v} must be a positive integer`);
  return n;
}

/** Cases per target: 1,000 in CI (npm test); e.g. HOPSCOPE_FUZZ_RUNS=100000 for a long run. */
export const FUZZ_RUNS = envInt('HOPSCOPE_FUZZ_RUNS', 1000);
export const FUZZ_SEED = envInt('HOPSCOPE_FUZZ_SEED', 17);

/**
 * fast-check settings: seeded, `FUZZ_RUNS` cases, and a per-case bound for async targets (a case that does
 * not settle in CASE_TIMEOUT_MS fails as a hang; synchronous targets are bounded by the test's own timeout).
 */
export const CASE_TIMEOUT_MS = 10_000;
export function fuzzParams<T>(extra: fc.Parameters<T> = {}): fc.Parameters<T> {
  return { seed: FUZZ_SEED, numRuns: FUZZ_RUNS, endOnFailure: true, ...extra };
}

/** Bound on a whole fuzz test: only a hang reaches it (1,000 cases take seconds). */
export const FUZZ_TEST_TIMEOUT_MS = Math.max(300_000, FUZZ_RUNS * 300);

type ErrorClass = abstract new (...args: never[]) => Error;

/** The error is one of `classes` and says something: a clear, typed failure, not a crash. */
export function assertClearError(e: unknown, classes: readonly ErrorClass[], what: string): void {
  const ok = classes.some((c) => e instanceof c);
  assert.ok(ok, `${what}: threw ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}; expected one of ${classes.map((c) => c.name).join(', ')}`);
  assert.ok((e as Error).message.length > 10, `${what}: error without a message`);
}

/** Runs `fn`: its value, or the typed error it threw (anything else fails the case). */
export function settle<T>(fn: () => T, classes: readonly ErrorClass[], what: string): { value: T } | { error: Error } {
  try {
    return { value: fn() };
  } catch (e) {
    assertClearError(e, classes, what);
    return { error: e as Error };
  }
}

export async function settleAsync<T>(fn: () => Promise<T>, classes: readonly ErrorClass[], what: string): Promise<{ value: T } | { error: Error }> {
  try {
    return { value: await fn() };
  } catch (e) {
    assertClearError(e, classes, what);
    return { error: e as Error };
  }
}
