// The main job: `hopscope demo` on the shipped teaching model writes a report whose numbers are the
// experiments' own tables (recomputed here from the CSV files), and a self-contained HTML page.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as aq from 'arquero';
import { shutdownEngine } from '../../src/engine/backend';
import { CompareWorker, demoSpecs, hasVqaSplit, runDemo, TOYWORLD, type DemoOutput } from '../../src/cli/demo';
// The default model (`teaching`) and the one the demo draws next to it (`teaching-early`): the registry's.
import { TEACHING_COMPARE_DIR as TEACHING_COMPARE, TEACHING_DIR as TEACHING_MODEL } from '../../src/data/teaching-models';

const haveModel = fs.existsSync(path.join(TEACHING_MODEL, 'config.json'));
let out: DemoOutput;
let dir: string;

before(async () => {
  if (!haveModel) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-demo-'));
  out = await runDemo({ out: dir, limit: 3, only: ['recall-gap', 'probe', 'logit-lens'], progress: false });
});
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  shutdownEngine();
});

test('the teaching model is shipped', () => {
  assert.ok(haveModel, `${TEACHING_MODEL}/config.json is missing: the built-in default model must be in the repository`);
});

test('demo writes tables, summary.json and a self-contained report', { skip: !haveModel }, () => {
  assert.deepEqual(out.failures, []);
  for (const kind of ['recall-gap', 'probe', 'logit-lens']) {
    assert.ok(fs.statSync(path.join(dir, `${kind}.csv`)).size > 0, `${kind}.csv`);
    assert.ok(fs.statSync(path.join(dir, `${kind}.arrow`)).size > 0, `${kind}.arrow`);
  }
  // By default the early model is drawn next to the default (late) one: every kind twice.
  const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'));
  assert.equal(summary.model, TEACHING_MODEL);
  assert.equal(summary.compare, TEACHING_COMPARE);
  for (const kind of ['recall-gap', 'probe', 'logit-lens']) assert.ok(fs.statSync(path.join(dir, `${kind}-compare.csv`)).size > 0, `${kind}-compare.csv`);
  // In the registry's order, each kind on both models.
  assert.deepEqual(out.results.map((r) => r.kind), ['recall-gap', 'recall-gap', 'logit-lens', 'logit-lens', 'probe', 'probe']);
  // The demo's probe includes the transfer curve (fit on text, read on the image).
  for (const r of out.results.filter((x) => x.kind === 'probe')) assert.ok(Array.isArray(r.summary.transfer), 'transfer curve');
  const html = fs.readFileSync(out.report, 'utf8');
  assert.ok(!/<script[^>]+src=["']https?:/i.test(html), 'no external scripts');
  assert.ok(!/<link[^>]+href=["']https?:/i.test(html), 'no external styles');
  assert.match(html, /recall-gap/);
});

test("the report's recall-gap numbers are the table's per-entity-then-overall means", { skip: !haveModel }, () => {
  const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'));
  const rows = aq.fromCSV(fs.readFileSync(path.join(dir, 'recall-gap.csv'), 'utf8')).objects() as Record<string, unknown>[];
  const acc = (condition: string): number | null => {
    const byEntity = new Map<string, number[]>();
    for (const r of rows.filter((r) => r.condition === condition)) {
      const k = String(r.entity);
      byEntity.set(k, [...(byEntity.get(k) ?? []), r.correct === true || r.correct === 'true' ? 1 : 0]);
    }
    const means = [...byEntity.values()].map((v) => v.reduce((a, b) => a + b, 0) / v.length);
    return means.length ? means.reduce((a, b) => a + b, 0) / means.length : null;
  };
  const rg = summary['recall-gap'];
  const lib = out.results.find((r) => r.kind === 'recall-gap')!.summary;
  assert.equal(rg.textAcc, lib.textAcc);
  assert.equal(rg.imageAcc, lib.imageAcc);
  if (rg.textAcc === null) assert.equal(acc('text'), null);
  else {
    assert.ok(Math.abs(acc('text')! - rg.textAcc) < 1e-9, `text ${acc('text')} vs ${rg.textAcc}`);
    assert.ok(Math.abs(acc('image')! - rg.imageAcc) < 1e-9, `image ${acc('image')} vs ${rg.imageAcc}`);
  }
});

test('on toyworld the question-answering experiments ask only the held-out pairs; without vqa_split, every question', () => {
  const heldout = { where: { vqa_split: 'heldout' } };
  assert.ok(hasVqaSplit(TOYWORLD));
  const specs = demoSpecs(TEACHING_MODEL, 8, TOYWORLD);
  const filtered = specs.filter((s) => s.questions).map((s) => s.kind);
  assert.deepEqual(filtered, ['recall-gap', 'freeze', 'knockout', 'recovery', 'circuit']);
  for (const s of specs.filter((x) => x.questions)) assert.deepEqual(s.questions, heldout);
  // Real PopVQA has no vqa_split column: no filter, so nothing asks for a column that is not there.
  const popvqa = path.resolve(__dirname, '../fixtures/popvqa-sample');
  assert.equal(hasVqaSplit(popvqa), false);
  assert.ok(demoSpecs(TEACHING_MODEL, 8, popvqa).every((s) => s.questions === undefined));
});

test("the demo's circuit re-measures every site on a teaching model (its figure draws measured effects), the top sites on any other", () => {
  const circuitOf = (dir: string, layers?: number) => demoSpecs(dir, 8, TOYWORLD, layers).find((s) => s.kind === 'circuit') as Record<string, unknown>;
  // 12 layers × (attn_out, mlp_out) × 4 position groups, written however the path is.
  assert.equal(circuitOf(TEACHING_MODEL, 12).topK, 96);
  assert.equal(circuitOf(path.relative(process.cwd(), TEACHING_COMPARE) + path.sep, 12).topK, 96);
  // Depth unknown, or a folder that is not a teaching model (on a 7B model every site is thousands of patched runs).
  assert.equal(circuitOf(TEACHING_MODEL).topK, undefined);
  assert.equal(circuitOf(path.resolve(__dirname, '../fixtures/hf/llava'), 12).topK, undefined);
});

test('the demo recall gap is measured on held-out pairs, and the report says so', { skip: !haveModel }, () => {
  const splits = JSON.parse(fs.readFileSync(path.join(TOYWORLD, 'splits.json'), 'utf8')).visualInstructionTuning.heldout as Record<string, string[]>;
  const rows = aq.fromCSV(fs.readFileSync(path.join(dir, 'recall-gap.csv'), 'utf8')).objects() as Record<string, unknown>[];
  const asked = rows.filter((r) => r.condition === 'text' || r.condition === 'image');
  for (const r of asked) assert.ok(splits[String(r.entity).split('\u0000')[0]].includes(String(r.relation)), `${r.entity} ${r.relation}`);
  const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'));
  assert.deepEqual(summary.questions, { where: { vqa_split: 'heldout' } });
  assert.match(fs.readFileSync(out.report, 'utf8'), /held out of the teaching model's visual instruction tuning/);
});

test('a model named without --compare, or compare: false, runs alone', { skip: !haveModel }, async () => {
  for (const opts of [{ model: TEACHING_COMPARE }, { compare: false as const }]) {
    const cdir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-demo-alone-'));
    try {
      const c = await runDemo({ ...opts, out: cdir, limit: 1, only: ['logit-lens'], progress: false });
      assert.equal(c.results.length, 1, JSON.stringify(opts));
      assert.equal(JSON.parse(fs.readFileSync(path.join(cdir, 'summary.json'), 'utf8')).compare, undefined);
    } finally {
      fs.rmSync(cdir, { recursive: true, force: true });
    }
  }
});

test('--compare: a second model on the same specs, on one figure with the first and its numbers beside, in one section per kind', { skip: !haveModel }, async () => {
  const cdir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-demo-compare-'));
  try {
    const c = await runDemo({ out: cdir, limit: 2, only: ['probe'], progress: false, compare: TEACHING_MODEL });
    assert.deepEqual(c.failures, []);
    assert.equal(c.results.length, 2);
    assert.ok(fs.existsSync(path.join(cdir, 'probe.csv')) && fs.existsSync(path.join(cdir, 'probe-compare.csv')));
    const summary = JSON.parse(fs.readFileSync(path.join(cdir, 'summary.json'), 'utf8'));
    assert.equal(summary.compare, TEACHING_MODEL);
    // The same model twice: the same numbers in both columns.
    assert.deepEqual({ ...summary.probe, seconds: 0 }, { ...summary['probe-compare'], seconds: 0 });
    const html = fs.readFileSync(c.report, 'utf8');
    const row = /<div class="hs-row">([\s\S]*?)<\/div>\n<\/section>/.exec(html);
    assert.ok(row, 'a row of columns');
    assert.equal((row[1].match(/class="hs-col"/g) ?? []).length, 2);
    // One figure with both models over the columns: the section's view, its saved state comparing the two.
    const section = /<section class="hs-section">\n<h2>probe<\/h2>([\s\S]*?)<\/section>/.exec(html)!;
    assert.ok(section, 'the probe section');
    assert.equal((section[1].match(/application\/vnd\.jupyter\.widget-view\+json/g) ?? []).length, 1, 'one figure for both models');
    assert.equal((row[1].match(/application\/vnd\.jupyter\.widget-view\+json/g) ?? []).length, 0, 'no second copy in the columns');
    const saved = JSON.parse(/<script type="application\/vnd\.jupyter\.widget-state\+json">([\s\S]*?)<\/script>/.exec(html)![1]) as { state: Record<string, { state: { label: string; compare: { label: string }[] } }> };
    const fig = Object.values(saved.state).find((m) => m.state.compare?.length)!;
    assert.ok(fig, 'a saved view compares the models');
    assert.deepEqual([fig.state.label, ...fig.state.compare.map((c) => c.label)], ['data/teaching/late', 'data/teaching/late (2)']);
  } finally {
    fs.rmSync(cdir, { recursive: true, force: true });
  }
});

test('the second model runs in a worker thread or in this one with the same numbers; a worker that dies names why', { skip: !haveModel }, async () => {
  const runs: Record<string, unknown>[] = [];
  for (const parallel of [true, false]) {
    const cdir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-demo-parallel-'));
    try {
      const c = await runDemo({ out: cdir, limit: 2, only: ['recall-gap', 'logit-lens'], progress: false, parallel });
      assert.deepEqual(c.failures, []);
      assert.deepEqual(c.results.map((r) => r.kind), ['recall-gap', 'recall-gap', 'logit-lens', 'logit-lens']);
      const s = JSON.parse(fs.readFileSync(path.join(cdir, 'summary.json'), 'utf8'));
      runs.push(Object.fromEntries(['recall-gap-compare', 'logit-lens-compare'].map((k) => [k, { ...s[k], seconds: 0 }])));
      // The worker's table comes back with the same columns and rows as one computed here would have.
      assert.ok(aq.fromCSV(fs.readFileSync(path.join(cdir, 'recall-gap-compare.csv'), 'utf8')).numRows() > 0);
    } finally {
      fs.rmSync(cdir, { recursive: true, force: true });
    }
  }
  assert.deepEqual(runs[0], runs[1]);
  // A worker that cannot load its model dies; every analysis it owed rejects with the reason, none hangs.
  const dead = new CompareWorker({ modelDir: path.join(os.tmpdir(), 'no-such-model'), dataDir: TOYWORLD, specs: [[0, { kind: 'probe', version: 1 }], [1, { kind: 'logit-lens', version: 1 }]] });
  await assert.rejects(dead.result(0), /the worker running .*no-such-model failed: .*no-such-model/);
  await assert.rejects(dead.result(1), /the worker running .*no-such-model failed/);
  await dead.stop();
});
