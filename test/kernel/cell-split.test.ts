// Cells are split into TypeScript runs and magics; `%` at the start of a line is never TypeScript.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CellSyntaxError, splitCell } from '../../kernel/cell-split';

test('plain TypeScript is one segment', () => {
  assert.deepEqual(splitCell('const a = 1\na + 1'), [{ kind: 'ts', code: 'const a = 1\na + 1', line: 0 }]);
});

test('line magics split the cell, in order, with line numbers', () => {
  const s = splitCell('const a = 1\n%load teaching --as m\n  %hooks --filter "resid post"\na + 1');
  assert.deepEqual(s, [
    { kind: 'ts', code: 'const a = 1', line: 0 },
    { kind: 'magic', name: 'load', args: 'teaching --as m', line: 1 },
    { kind: 'magic', name: 'hooks', args: '--filter "resid post"', line: 2 },
    { kind: 'ts', code: 'a + 1', line: 3 },
  ]);
});

test('%% on the first line makes the rest the body; elsewhere it is an error', () => {
  assert.deepEqual(splitCell('\n%%spec --as r\n{"kind": "probe"}\n'), [
    { kind: 'magic', name: 'spec', args: '--as r', line: 1, body: '{"kind": "probe"}\n' },
  ]);
  assert.throws(() => splitCell('const a = 1\n%%spec'), (e: unknown) => e instanceof CellSyntaxError && /first line/.test((e as Error).message));
});

test('blank runs and a lone % are not magics', () => {
  assert.deepEqual(splitCell('%lsmagic\n\n'), [{ kind: 'magic', name: 'lsmagic', args: '', line: 0 }]);
  assert.equal(splitCell('a % b')[0].kind, 'ts');
  assert.equal(splitCell('%')[0].kind, 'ts');
});
