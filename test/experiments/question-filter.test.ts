// The spec's `questions.where` filter: applied by the prompt sources (dataset and pre-tokenised), so every
// experiment that draws factual questions asks only those passing it. On toyworld, vqa_split = heldout
// selects exactly the pairs splits.json holds out of visual instruction tuning. Fixture A's weights with
// toyworld's image token, as in dataset-source.test.ts (the numbers mean nothing).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { InputError } from '../../src/errors';
import { runExperiment } from '../../src/experiments';
import { scopeQuestions } from '../../src/experiments/source';
import { datasetSource, prepareSource } from '../../src/experiments/sources/dataset';
import { rawSource } from '../../src/experiments/sources/raw';
import { loadPopVQA } from '../../src/data/popvqa';
import { loadTokenizer } from '../../src/io/tokenizer';
import { LlavaModel } from '../../src/models/llava/model';
import { loadToyworldLlava, syntheticPrompts } from './fixture-data';

const TOYWORLD = path.resolve(__dirname, '../../data/toyworld');
const SAMPLE = path.resolve(__dirname, '../fixtures/popvqa-sample');
const splits = JSON.parse(fs.readFileSync(path.join(TOYWORLD, 'splits.json'), 'utf8')).visualInstructionTuning as Record<'train' | 'heldout', Record<string, string[]>>;
const HELDOUT = { where: { vqa_split: 'heldout' } };
let model: LlavaModel;

before(async () => {
  await initEngine();
  model = loadToyworldLlava();
});
after(() => {
  model.dispose();
  shutdownEngine();
});

const isInputError = (re: RegExp) => (e: unknown) => e instanceof InputError && re.test(e.message);

test('toyworld: vqa_split = heldout gives exactly the held-out pairs of splits.json, in both modalities', async () => {
  const full = datasetSource(model, loadPopVQA(TOYWORLD, { limitPerType: 3 }));
  const source = scopeQuestions(full, HELDOUT);
  assert.notEqual(source, full);
  assert.equal(scopeQuestions(full, null), full);
  const es = source.entities();
  assert.equal(es.length, 12);
  await prepareSource(source, es);
  for (const e of es) {
    const sUri = e.extra.s_uri;
    for (const modality of ['text', 'image'] as const) {
      const rels = source.questions(e, modality).map((q) => q.relation!);
      assert.deepEqual(rels.slice().sort(), splits.heldout[sUri].slice().sort(), `${sUri} ${modality}`);
    }
    // The unfiltered source still has all four; ids are the same prompts'.
    const all = full.questions(e, 'text');
    assert.equal(all.length, 4);
    for (const q of source.questions(e, 'text')) assert.ok(all.some((a) => a.id === q.id));
    // naming() draws from the filtered questions too.
    const naming = source.naming(e)!;
    assert.ok(splits.heldout[sUri].includes(source.questions(e, 'text').find((q) => naming.id.endsWith(`/${q.question}`))?.relation ?? ''));
  }
  // The complement, and filters compose (AND): held out and about birth cities = celebs only.
  const train = full.withQuestions!({ vqa_split: 'train' });
  for (const e of train.entities()) assert.deepEqual(train.questions(e, 'text').map((q) => q.relation!).sort(), splits.train[e.extra.s_uri].slice().sort());
  const narrow = source.withQuestions!({ relation: ['birth_city', 'painter'] });
  const expected = full.entities().filter((e) => splits.heldout[e.extra.s_uri].some((r) => r === 'birth_city' || r === 'painter'));
  assert.deepEqual(narrow.entities().map((e) => e.key), expected.map((e) => e.key));
  assert.ok(narrow.entities().every((e) => narrow.questions(e, 'text').length === 1));
});

test('entities left without a question are dropped before the limit', () => {
  const source = datasetSource(model, loadPopVQA(TOYWORLD, { types: ['celebs'] })).withQuestions!({ vqa_split: 'heldout', relation: 'occupation' });
  const keep = Object.entries(splits.heldout).filter(([s, rels]) => s <= 'TW0052' && rels.includes('occupation')).map(([s]) => s);
  assert.ok(keep.length > 0 && keep.length < 52);
  assert.deepEqual(source.entities().map((e) => e.extra.s_uri), keep);
  assert.deepEqual(source.entities({ limit: 3 }).map((e) => e.extra.s_uri), keep.slice(0, 3));
});

test('a column the data lacks: InputError naming it and listing the columns (real PopVQA has no vqa_split)', () => {
  const tokenizer = loadTokenizer(TOYWORLD);
  assert.throws(
    () => datasetSource(model, loadPopVQA(SAMPLE), { tokenizer, where: { vqa_split: 'heldout' } }),
    isInputError(/no column 'vqa_split' \(columns: s_uri, subject, question, question_for_image, possible_answers\)/),
  );
  // Without the filter the same data works as before.
  assert.equal(datasetSource(model, loadPopVQA(SAMPLE), { tokenizer }).entities().length, 6);
  assert.throws(
    () => datasetSource(model, loadPopVQA(TOYWORLD, { limitPerType: 1 })).withQuestions!({ split: 'heldout' }),
    isInputError(/no column 'split' \(columns: s_uri, subject, question, question_for_image, possible_answers, relation, vqa_split\)/),
  );
});

test('recall-gap and recovery honour questions.where; counts are after the filter', async () => {
  const data = loadPopVQA(TOYWORLD, { limitPerType: 1 });
  const heldout = (rows: Record<string, unknown>[]) => rows.filter((r) => r.relation != null).every((r) => splits.heldout[String(r.entity).split('\u0000')[0]].includes(String(r.relation)));
  const rg = await runExperiment({ kind: 'recall-gap', version: 1, identify: false, maxNewTokens: 2, questions: HELDOUT }, { model, data });
  const rows = rg.table.objects() as Record<string, unknown>[];
  assert.equal(rows.filter((r) => r.condition === 'text').length, 8);
  assert.equal(rows.filter((r) => r.condition === 'image').length, 8);
  assert.ok(heldout(rows));
  assert.equal(rg.summary.questions, 8);
  assert.equal(rg.summary.entitiesTried, 4);
  assert.deepEqual(rg.spec.questions, HELDOUT);
  const all = await runExperiment({ kind: 'recall-gap', version: 1, identify: false, maxNewTokens: 2 }, { model, data });
  assert.equal(all.summary.questions, 16);
  const rc = await runExperiment(
    { kind: 'recovery', version: 1, identifiedOnly: false, maxNewTokens: 2, cotMaxNewTokens: 2, questions: HELDOUT },
    { model, data },
  );
  assert.equal(rc.summary.questions, 8);
  assert.ok(heldout(rc.table.objects() as Record<string, unknown>[]));
  await assert.rejects(
    runExperiment({ kind: 'recall-gap', version: 1, identify: false, maxNewTokens: 2, questions: { where: { split: 'x' } } }, { model, data }),
    isInputError(/no column 'split'/),
  );
});

test('pre-tokenised prompts filter on relation and their question prompts\' columns', () => {
  const raw = syntheticPrompts();
  const full = rawSource(raw);
  const r1 = full.withQuestions!({ relation: 'r1' });
  const e0 = r1.entities()[0];
  for (const m of ['text', 'image'] as const) {
    assert.ok(r1.questions(e0, m).length > 0 && r1.questions(e0, m).every((q) => q.relation === 'r1'));
    const ids = new Set(full.questions(full.entities()[0], m).map((q) => q.id));
    assert.ok(r1.questions(e0, m).every((q) => ids.has(q.id)), 'the same prompt ids');
  }
  assert.equal(r1.questions(e0, 'image', { cotSuffix: 'x' }).length, 1);
  assert.ok(r1.identification(e0));
  assert.throws(() => full.withQuestions!({ vqa_split: 'heldout' }), isInputError(/no column 'vqa_split' \(columns: relation\)/));
  // Columns on question prompts: only e1's r0 is held out, so the other entities drop out.
  const marked = { ...raw, prompts: raw.prompts.map((p) => (p.role === 'question' ? { ...p, columns: { vqa_split: p.entity === 'e1' && p.relation === 'r0' ? 'heldout' : 'train' } } : p)) };
  const held = rawSource(marked).withQuestions!({ vqa_split: 'heldout' });
  assert.deepEqual(held.entities().map((e) => e.key), ['e1']);
  assert.deepEqual(held.questions(held.entities()[0], 'text').map((q) => q.relation), ['r0']);
  assert.equal(rawSource(marked).withQuestions!({ vqa_split: 'heldout' }).withQuestions!({ relation: 'r1' }).entities().length, 0);
});
