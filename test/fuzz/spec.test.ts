// Fuzzed experiment specs against validateSpec: the shipped example specs with fields replaced, removed or
// added (wrong types, huge numbers, deep nesting, odd keys), and arbitrary JSON values. Every case returns a
// spec that validates again unchanged, or fails with a SpecError whose path names a field of the input.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { SpecError } from '../../src/errors';
import { validateSpec } from '../../src/experiments/validate';
import { FUZZ_RUNS, FUZZ_SEED, FUZZ_TEST_TIMEOUT_MS, fuzzParams, settle } from './fuzz';

const EXAMPLES = path.resolve(__dirname, '..', '..', 'examples', 'specs');
const bases = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(fs.readFileSync(path.join(EXAMPLES, f), 'utf8')) as Record<string, unknown>);
const keys = [...new Set(bases.flatMap((b) => Object.keys(b)).concat(['layers', 'rows', 'types', 'seed', 'batchSize', 'template', 'match', 'strict', 'questions', 'notes', '__proto__', 'constructor']))];

/** Deep nesting is built inside the property (fast-check's own printer would overflow on the value). */
const deep = fc.integer({ min: 1, max: 5000 }).map((n) => ({ deepNest: n }));
function expand(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || !('deepNest' in v) || Object.keys(v).length !== 1) return v;
  let out: unknown = 0;
  for (let i = 0; i < (v as { deepNest: number }).deepNest; i++) out = { a: out };
  return out;
}
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(-1, 0, 1.5, 2 ** 53, 1e308, -1e308, '', 'image->last', [0, 1], [-1], [1e9], [[0, 1]], null, true),
  deep,
);
const mutation = fc.oneof(
  fc.record({ op: fc.constant('set' as const), key: fc.constantFrom(...keys), value }),
  fc.record({ op: fc.constant('delete' as const), key: fc.constantFrom(...keys) }),
  fc.record({ op: fc.constant('add' as const), key: fc.string({ maxLength: 6 }), value }),
);
const raw = fc.oneof(
  { weight: 6, arbitrary: fc.record({ base: fc.nat(bases.length - 1), mutations: fc.array(mutation, { maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ json: fc.jsonValue({ maxDepth: 4 }) }) },
);

type Recipe = { base: number; mutations: { op: 'set' | 'delete' | 'add'; key: string; value?: unknown }[] } | { json: unknown };
function build(r: Recipe): unknown {
  if ('json' in r) return r.json;
  const s: Record<string, unknown> = JSON.parse(JSON.stringify(bases[r.base]));
  for (const m of r.mutations) {
    // defineProperty: a "__proto__" key arrives as an own property, as JSON.parse makes it.
    if (m.op === 'delete') delete s[m.key];
    else Object.defineProperty(s, m.key, { value: expand(m.value), enumerable: true, writable: true, configurable: true });
  }
  return s;
}

test(`experiment specs: ${FUZZ_RUNS} fuzzed specs validate, or fail with a SpecError naming the field`, { timeout: FUZZ_TEST_TIMEOUT_MS }, (t) => {
  let valid = 0;
  let deepRefused = 0;
  const protoBefore = Object.getOwnPropertyNames(Object.prototype).sort();
  fc.assert(
    fc.property(raw, (recipe) => {
      const r = build(recipe as Recipe);
      // A shallow snapshot (deep copies and printers are recursive: they overflow on the deep values).
      const snapshot = typeof r === 'object' && r !== null ? Object.entries(r) : null;
      const out = settle(() => validateSpec(r), [SpecError], `validateSpec(${JSON.stringify(recipe).slice(0, 200)})`);
      if (snapshot) assert.deepEqual(Object.entries(r as object).map(([k, v]) => [k, v]), snapshot.map(([k, v]) => [k, v]), 'the input is not modified');
      if ('error' in out) {
        if (/plain JSON/.test(out.error.message)) deepRefused++;
        const p = (out.error as SpecError).path;
        if (p) assert.ok(out.error.message.includes(p.split(/[.[]/)[0]), `the message names the field ${p}: ${out.error.message}`);
        return;
      }
      valid++;
      assert.deepEqual(validateSpec(JSON.parse(JSON.stringify(out.value))), out.value, 'a validated spec validates again unchanged');
    }),
    fuzzParams(),
  );
  assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), protoBefore, 'no prototype pollution');
  assert.ok(valid > 0 && valid < FUZZ_RUNS, `valid ${valid} of ${FUZZ_RUNS}: the generator must reach both outcomes`);
  assert.ok(deepRefused > 0, 'the generator reached a spec nested too deeply to copy');
  t.diagnostic(`${FUZZ_RUNS} cases (seed ${FUZZ_SEED}): ${valid} valid specs, ${FUZZ_RUNS - valid} refused with a SpecError`);
});

test('regression: a spec nested 5,000 deep is a SpecError, not a stack overflow', () => {
  let deepValue: unknown = 0;
  for (let i = 0; i < 5000; i++) deepValue = { a: deepValue };
  assert.throws(() => validateSpec({ kind: 'knockout', version: 1, notes: deepValue }), (e: Error) => e instanceof SpecError && /plain JSON/.test(e.message));
  const cyclic: Record<string, unknown> = { kind: 'knockout', version: 1 };
  cyclic.self = cyclic;
  assert.throws(() => validateSpec(cyclic), SpecError);
  assert.throws(() => validateSpec({ kind: 'knockout', version: 1, seed: 1n }), SpecError);
});
