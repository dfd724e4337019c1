// Fuzzed magic lines through the kernel's pure parsers (no kernel started): splitCell finds the magics in a
// cell, the registry finds each by name and parses its argument line with commander. Every line parses, or
// fails with the kernel's UsageError / CellSyntaxError naming the problem; nothing else escapes, and no
// argument makes the parser allocate or loop beyond the line's own size (a layer range such as 0-4000000000
// is refused, not expanded).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CellSyntaxError, splitCell } from '../../kernel/cell-split';
import { defaultMagics } from '../../kernel/magics';
import { UsageError, parseLayers } from '../../kernel/magics/registry';
import { MAX_RANGE_INDEX } from '../../src/experiments/spec-options';
import { FUZZ_RUNS, FUZZ_SEED, FUZZ_TEST_TIMEOUT_MS, fuzzParams, settle } from './fuzz';

const registry = defaultMagics();
const magics = registry.all();
const names = magics.map((m) => m.name);
const longOptions = [...new Set(magics.flatMap((m) => registry.command(m, { text: '' }).options.map((o) => o.long).filter((x): x is string => !!x)))];

const value = fc.oneof(
  fc.constantFrom('0', '5-29', '0,3,8-10', '0-4000000000', '9-2', '1e9', '-1', 'NaN', '99999999999999999999', 'a,b', ',', '', 'same', 'image->last', 'x y'),
  fc.string({ maxLength: 8 }),
  fc.integer().map(String),
  fc.tuple(fc.nat(), fc.nat()).map(([a, b]) => `${a}-${b}`),
);
const word = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...longOptions) },
  { weight: 3, arbitrary: value },
  { weight: 1, arbitrary: fc.constantFrom('-h', '--help', '--', '-', '--no-such-option', '"unclosed', "'q w'", '\\', '"a\\"b"') },
);
const line = fc.record({
  cell: fc.boolean(),
  name: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...names) }, { weight: 1, arbitrary: fc.string({ maxLength: 6 }) }),
  words: fc.array(word, { maxLength: 8 }),
  before: fc.array(fc.constantFrom('const x = 1', '', '%lsmagic', '%%spec', '  % load', '%'), { maxLength: 2 }),
});

test(`magics: ${FUZZ_RUNS} fuzzed magic lines parse, or fail with a UsageError naming the problem`, { timeout: FUZZ_TEST_TIMEOUT_MS }, (t) => {
  let parsed = 0;
  let refused = 0;
  fc.assert(
    fc.property(line, (l) => {
      const cell = [...l.before, `${l.cell ? '%%' : '%'}${l.name} ${l.words.join(' ')}`, 'body()'].join('\n');
      const split = settle(() => splitCell(cell), [CellSyntaxError], 'splitCell');
      if ('error' in split) return;
      for (const seg of split.value) {
        if (seg.kind !== 'magic') continue;
        const m = registry.find(seg.name);
        if (!m) continue; // the kernel answers "unknown magic %x" (tested in magics.test.ts)
        const r = settle(() => registry.parse(m, seg.args), [UsageError], `%${seg.name} ${seg.args}`);
        if ('error' in r) {
          refused++;
          assert.match(r.error.message, new RegExp(`^%{1,2}${m.name}: `), 'the error names the magic');
          continue;
        }
        parsed++;
        if (r.value.kind === 'run')
          for (const v of Object.values(r.value.opts))
            if (Array.isArray(v)) assert.ok(v.length <= Math.max(MAX_RANGE_INDEX, seg.args.length), `an option list of ${v.length} values from a ${seg.args.length}-character line`);
      }
    }),
    fuzzParams(),
  );
  assert.ok(parsed > 0 && refused > 0, `parsed ${parsed}, refused ${refused}: the generator must reach both`);
  t.diagnostic(`${FUZZ_RUNS} cases (seed ${FUZZ_SEED}): ${parsed} magic lines parsed, ${refused} refused with a UsageError`);
});

test('regression: a huge layer range is refused instead of expanded (it hung the kernel and grew a Set to 4e9 entries)', () => {
  assert.equal(parseLayers('0-4000000000'), undefined);
  assert.equal(parseLayers(`0-${MAX_RANGE_INDEX}`), undefined);
  assert.equal(parseLayers(`0-${MAX_RANGE_INDEX - 1}`)?.length, MAX_RANGE_INDEX);
  assert.equal(parseLayers('99999999999999999999'), undefined, 'not a safe integer');
  const ll = registry.get('logitlens', false)!;
  assert.throws(() => registry.parse(ll, '--layers 0-4000000000'), /--layers "0-4000000000" is not a layer range/);
  // --rows (any spec's integer-list field) had its own copy of the range parser, without the bound: the fuzzer
  // found `--rows 55029402-1778884743` ("Set maximum size exceeded") once the probe gained a flag. One parser now.
  const at = registry.get('attribute', false)!;
  assert.throws(() => registry.parse(at, '--rows 55029402-1778884743'), (e: unknown) => e instanceof UsageError && /--rows/.test((e as Error).message));
  const ok = registry.parse(at, '--rows 0,2-3');
  assert.deepEqual(ok.kind === 'run' ? ok.opts.rows : null, [0, 2, 3]);
});
