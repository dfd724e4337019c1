// Magic and hook-point completion, magic help on Shift-Tab, and the masking that lets TypeScript complete
// around magic lines: what the kernel answers before tslab is asked.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { completeSpecial, inspectSpecial, maskMagics } from '../../kernel/completion';
import type { Model } from '../../kernel/library';
import { defaultMagics } from '../../kernel/magics';
import * as fake from './fixtures/fake-library';

const registry = defaultMagics();
const at = (code: string) => code.indexOf('|');
const complete = (code: string, model: Model | null = null) => completeSpecial(code.replace('|', ''), at(code), registry, model);

test('magic names complete from the registry, with their summaries as signatures', () => {
  const r = complete('%rec|')!;
  assert.deepEqual(r.matches, ['%recallgap', '%recover']);
  assert.equal(r.cursor_start, 0);
  assert.equal(r.cursor_end, 4);
  const types = (r.metadata as { _jupyter_types_experimental: { type: string; signature: string }[] })._jupyter_types_experimental;
  assert.equal(types[0].type, 'magic');
  assert.match(types[0].signature, /accuracy/i);
  assert.deepEqual(complete('%%sp|')!.matches, ['%%spec']);
  // A cell magic only on the first line; a line magic below TypeScript.
  assert.deepEqual(complete('const a = 1\n%%sp|')!.matches, []);
  const below = complete('const a = 1\n  %lo|')!;
  assert.deepEqual(below.matches, ['%load', '%logitlens']);
  assert.equal(below.cursor_start, 'const a = 1\n  '.length);
});

test('options of the magic on the line, from its definition; option values from their choices', () => {
  const r = complete('%recallgap --|')!;
  assert.ok((r.matches as string[]).includes('--limit'));
  assert.ok((r.matches as string[]).includes('--no-widget'));
  assert.ok((r.matches as string[]).includes('--help'));
  assert.ok((r.matches as string[]).every((m) => m.startsWith('--')));
  assert.equal(r.cursor_start, '%recallgap '.length);
  // Every field of the cross-patch schema is a flag (issue 13: flags derived from the schema), so two start with --do.
  assert.deepEqual(complete('%crosspatch --limit 3 --do|')!.matches, ['--donors', '--donors-per-target']);
  assert.deepEqual(complete('%crosspatch --limit 3 --donors-|')!.matches, ['--donors-per-target']);
  assert.deepEqual(complete('%crosspatch --donors |')!.matches, ['same', 'cross', 'mixed']);
  assert.deepEqual(complete('%crosspatch --donors cr|')!.matches, ['cross']);
  assert.deepEqual(complete('%load te|')!.matches, ['teaching', 'teaching-late', 'teaching-early', 'teaching-v5']);
  assert.deepEqual(complete('%load teaching-e|')!.matches, ['teaching-early']);
  assert.deepEqual(complete('%nosuch --|')!.matches, []);
});

test("hook-point names inside a string come from the loaded model; outside a string, tslab answers", async () => {
  const model = (await fake.loadModel('m')) as unknown as Model;
  const r = complete("hs.intervene(model, { at: 'lm.blocks.1.r|", model)!;
  assert.deepEqual(r.matches, ['lm.blocks.1.resid_pre', 'lm.blocks.1.resid_post']);
  assert.equal(r.cursor_start, "hs.intervene(model, { at: '".length);
  assert.equal((r.matches as string[]).length, 2);
  assert.equal(complete('"lm.blocks.|', model)!.matches instanceof Array, true);
  assert.equal((complete('"lm.blocks.|', model)!.matches as string[]).length, 16);
  assert.equal(complete("'a' + lm.blocks.|", model), null, 'not inside a string');
  assert.equal(complete("'lm.blocks.|"), null, 'no model loaded');
  assert.equal(complete('hs.load|'), null);
});

test('Shift-Tab on a magic shows its help; elsewhere tslab answers', () => {
  const r = inspectSpecial('%recallgap --limit 3', 4, registry)!;
  assert.equal(r.found, true);
  assert.match(String((r.data as Record<string, string>)['text/plain']), /Usage: %recallgap.*--limit <n>/s);
  assert.equal(inspectSpecial('%nosuch', 3, registry)!.found, false);
  assert.equal(inspectSpecial('const x = 1', 3, registry), null);
});

test('magic lines are blanked for TypeScript at unchanged offsets; a %% cell is not TypeScript', () => {
  const code = 'const a = 1\n%load teaching\na.toFix';
  const masked = maskMagics(code)!;
  assert.equal(masked.length, code.length);
  assert.equal(masked, 'const a = 1\n' + ' '.repeat('%load teaching'.length) + '\na.toFix');
  assert.equal(maskMagics('%%spec\n{"kind": "x"}'), null);
});
