// Shorthand properties spelled out before tslab compiles a cell (kernel/cell-shorthand.ts), and the bug it
// works around: tslab's executor loses `{ x }` when x was declared in an earlier cell.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expandShorthandProperties as expand } from '../../kernel/cell-shorthand';
import { LazyConverters, TsRunner } from '../../kernel/cell-runner';

test('shorthand properties are spelled out; everything else is left as written', () => {
  assert.equal(expand('f({ model, data: d, spec })'), 'f({ model: model, data: d, spec: spec })');
  assert.equal(expand('({ a = 1, b } = o)'), '({ a: a = 1, b: b } = o)');
  assert.equal(expand('const x = { a: { b } }'), 'const x = { a: { b: b } }');
  assert.equal(expand('const { a, b: [c] } = o; function f({ d }: T) {}'), 'const { a, b: [c] } = o; function f({ d }: T) {}');
  assert.equal(expand('// { q }\nconst s = "{ q }"; const t = `${ { q }.q }`'), '// { q }\nconst s = "{ q }"; const t = `${ { q: q }.q }`');
  const plain = 'console.log(1)';
  assert.equal(expand(plain), plain);
  assert.equal(expand('const broken = { a, '), 'const broken = { a: a, ', 'a syntax error stays one; tslab reports it');
});

test('a later cell can use an earlier cell’s variable in a shorthand property', async () => {
  const convs = new LazyConverters();
  const runner = new TsRunner(process.cwd(), convs, { hs: {}, widgets: {} });
  try {
    assert.deepEqual(await runner.run('const q = 5'), { ok: true, hasValue: false, value: undefined });
    const r = await runner.run('({ q, r: q + 1 })');
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.value, { q: 5, r: 6 });
  } finally {
    convs.close();
  }
});
