// Every experiment kind end to end on fixture A with synthetic PopVQA-style prompts in its random
// vocabulary (the numbers mean nothing; the pipeline must run), its spec round-tripping through JSON,
// and no tensor left behind after repeated runs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { runExperiment, validateSpec, viewFromResult, type SpecBase, type ExperimentResult } from '../../src/experiments';
import type { Model } from '../../src/models/model';
import type { ProbeSummary } from '../../src/experiments/probe';
import { validateViewState } from '../../src/report/views';
import { loadFixture, syntheticPrompts } from './fixture-data';

let model: Model;
let backbone: Model;
let baseline = 0;
// Entities 0 and 1 carry the words the random model tends to generate, so some are "identified".
const data = syntheticPrompts(['tok223 tok251', 'tok65 tok291', 'tok5 tok6', 'tok7 tok8']);

before(async () => {
  await initEngine();
  model = loadFixture('llava_tiny_A');
  backbone = loadFixture('llama_tiny_C');
  baseline = tf.memory().numTensors;
});
after(() => {
  model.dispose();
  backbone.dispose();
  shutdownEngine();
});

async function run(spec: { kind: string; [field: string]: unknown }): Promise<ExperimentResult<SpecBase>> {
  const events: { done: number; total: number }[] = [];
  const partial: unknown[] = [];
  const r = await runExperiment(spec, { model, data, backbone, onProgress: (e) => events.push(e), onPartial: (rows) => partial.push(...rows) });
  assert.equal(r.kind, spec.kind);
  assert.ok(r.table.numRows() > 0, `${spec.kind}: empty table`);
  assert.ok(events.length > 0, `${spec.kind}: no progress events`);
  assert.ok(partial.length > 0, `${spec.kind}: no partial rows`);
  // The validated spec (defaults filled) round-trips through JSON unchanged.
  const json = JSON.parse(JSON.stringify(r.spec));
  assert.deepEqual(validateSpec(json), r.spec);
  assert.deepEqual(json, r.spec);
  JSON.stringify(r.summary);
  const v = viewFromResult(r);
  assert.ok(v.view && v.data);
  if (v.view !== 'table') {
    const check = validateViewState({ ...v, progress: null, error: null });
    assert.ok(check.ok, `${spec.kind}: view ${v.view} invalid: ${check.ok ? '' : check.problems.join('; ')}`);
  }
  return r;
}

const small = { maxNewTokens: 3, batchSize: 8 };

test('recall-gap: identification filter, text vs image answers, both rules, per-type summary', async () => {
  const r = await run({ kind: 'recall-gap', version: 1, identifyTokens: 3, ...small });
  const conds = new Set(Array.from(r.table.array('condition') as ArrayLike<string>));
  assert.ok(conds.has('identify'));
  assert.equal(r.summary.matchRule, 'popvqa-words');
  assert.ok('alternative' in r.summary);
  // The backbone benchmark (ctx.backbone = llama_tiny_C): the backbone on each row's text question, on the
  // same entities as the VLM's text and image conditions, with a paired test per pair of conditions.
  assert.ok(conds.has('backbone'));
  const bb = r.summary.backbone as { backboneAcc: number; textAcc: number; imageAcc: number; degradation: { absolute: number }; wilcoxon: Record<string, unknown>; byType: Record<string, unknown> };
  assert.equal(r.summary.backboneAcc, bb.backboneAcc);
  assert.ok(Number.isFinite(bb.backboneAcc));
  assert.equal(bb.textAcc, r.summary.textAcc);
  assert.equal(bb.imageAcc, r.summary.imageAcc);
  assert.equal(bb.degradation.absolute, bb.backboneAcc - bb.imageAcc);
  assert.deepEqual(Object.keys(bb.wilcoxon).sort(), ['backbone-image', 'backbone-text', 'text-image']);
  const rows = r.table.objects() as { entity: string; condition: string }[];
  const ents = (c: string) => [...new Set(rows.filter((x) => x.condition === c).map((x) => x.entity))].sort();
  assert.deepEqual(ents('backbone'), ents('image'));
  assert.deepEqual(ents('text'), ents('image'));
  const protocol = r.summary.protocol as { template: string; maxNewTokens: { identify: number; answer: number }; wilcoxon: { correction: boolean } };
  assert.equal(protocol.template, 'pre-tokenised');
  assert.deepEqual(protocol.maxNewTokens, { identify: 3, answer: 3, patch: null });
  assert.equal(protocol.wilcoxon.correction, false);
});

test('cross-patch: per-layer names-target / names-donor for same- and cross-type pairs', async () => {
  const r = await run({ kind: 'cross-patch', version: 1, identifiedOnly: false, donorsPerTarget: 2, layers: [0, 2], ...small });
  assert.deepEqual(r.summary.layers, [0, 2]);
  assert.equal(r.table.numRows(), (r.summary.pairs as number) * 2);
  assert.deepEqual(r.table.columnNames().slice(0, 3), ['pair', 'target', 'targetType']);
});

test('freeze: still identified per source layer, early/late split', async () => {
  // Short generations: the split's answers default to the authors' 100 tokens (18 s here for nothing tested).
  const r = await run({ kind: 'freeze', version: 1, identifiedOnly: false, until: 3, earlyCutoff: 1, identifyTokens: 3, answerTokens: 3, ...small });
  assert.deepEqual(r.summary.sourceLayers, [0, 1]);
  assert.deepEqual(r.summary.warnings, []);
  assert.ok(r.summary.split);
});

test('knockout: windows, bands and from-layer; every edge set incl. entity->last on text prompts', async () => {
  const r = await run({ kind: 'knockout', version: 1, identifiedOnly: false, window: 3, modality: 'both', limit: 2, edges: ['image->last', 'image->query', 'entity->last', 'last->last'], ...small });
  assert.equal((r.summary.relChange as number[][]).length, 4);
  const b = await run({ kind: 'knockout', version: 1, identifiedOnly: false, bands: [[0, 1], [2, 3]], accuracy: false, limit: 1, ...small });
  assert.deepEqual(b.summary.windows, ['0-1', '2-3']);
  const f = await run({ kind: 'knockout', version: 1, identifiedOnly: false, fromLayer: 2, accuracy: false, limit: 1, ...small });
  assert.deepEqual(f.summary.windows, ['2-end']);
});

test('logit-lens: top-k per layer and position, image positions with grid coordinates', async () => {
  const r = await run({ kind: 'logit-lens', version: 1, topK: 2, limit: 1, positions: 'image' });
  assert.equal(r.table.numRows(), 4 * 16 * 2);
  const rows = r.table.objects({ limit: 1 })[0] as Record<string, unknown>;
  assert.equal(rows.kind, 'image');
  assert.equal(rows.gridRow, 0);
});

test('probe: held-out accuracy per layer for image and text, resolution layer', async () => {
  const r = (await run({ kind: 'probe', version: 1, iterations: 30 })) as unknown as { table: ExperimentResult<SpecBase>['table']; summary: ProbeSummary } & ExperimentResult<SpecBase>;
  assert.equal(r.table.numRows(), 2 * 4);
  assert.ok('resolution' in r.summary);
  // Each layer's 95 % interval from the default 1,000 entity draws; the point estimate lies inside it.
  const ci = r.summary.resolutionCI;
  assert.ok(ci, 'no resolutionCI');
  assert.equal(ci.resamples, 1000);
  assert.equal(ci.reference, 'text');
  for (const m of ['image', 'text'] as const) {
    const at = r.summary.resolution[m];
    const { low, high, agree } = ci.layer[m];
    const inside = at === null ? high === null : (low ?? Infinity) <= at && at <= (high ?? Infinity);
    assert.ok(inside && agree > 0 && agree <= 1, `${m}: ${at} vs ${JSON.stringify(ci.layer[m])}`);
  }
  const lag = r.summary.resolution.image !== null && r.summary.resolution.text !== null ? r.summary.resolution.image - r.summary.resolution.text : null;
  assert.ok(lag === null || ((ci.lag.image.low ?? Infinity) <= lag && lag <= (ci.lag.image.high ?? Infinity)), JSON.stringify(ci.lag));
  const view = viewFromResult(r);
  const valid = validateViewState(view);
  assert.ok(valid.ok && valid.state.view === 'probe-accuracy', valid.ok ? '' : valid.problems.join('; '));
  assert.deepEqual(valid.state.data.resolutionCI, ci.layer);
  const none = (await run({ kind: 'probe', version: 1, iterations: 30, bootstrap: 0, thresholdOf: 'peak', threshold: 0.9 })) as unknown as { summary: ProbeSummary } & ExperimentResult<SpecBase>;
  assert.equal(none.summary.resolutionCI, null);
  // The peak rule in the experiment and in the view built from its streamed rows: one rule, one layer.
  const streamed = validateViewState(viewFromResult({ ...none, summary: { ...none.summary, partial: true } }));
  assert.ok(streamed.ok && streamed.state.view === 'probe-accuracy');
  assert.deepEqual(streamed.state.data.resolution, { image: none.summary.resolution.image, text: none.summary.resolution.text });
  assert.equal(streamed.state.data.thresholdOf, 'peak');
});

test('probe transfer: fit on every text prompt, scored on every image prompt, drawn as a third curve', async () => {
  const r = await run({ kind: 'probe', version: 1, iterations: 30, transfer: true });
  const rows = r.table.objects() as Record<string, unknown>[];
  const of = (m: string) => rows.filter((x) => x.modality === m);
  assert.equal(of('transfer').length, 4);
  const text = of('text')[0];
  const image = of('image')[0];
  for (const t of of('transfer')) {
    // Every text prompt trains it (both sides of the text split) and every image prompt tests it.
    assert.equal(t.nTrain, Number(text.nTrain) + Number(text.nTest));
    assert.equal(t.nTest, Number(image.nTrain) + Number(image.nTest));
  }
  const summary = r.summary as { transfer: number[]; resolution: { transfer: number | null } };
  assert.deepEqual(summary.transfer, of('transfer').map((x) => x.testAcc));
  const v = viewFromResult(r).data as { transfer?: number[] };
  assert.deepEqual(v.transfer, summary.transfer);
  const alone = await runExperiment({ kind: 'probe', version: 1, iterations: 5, layers: [1], modality: 'text', transfer: true }, { model, data });
  assert.equal(alone.table.numRows(), 1);
  assert.match((alone.summary.warnings as string[]).join('\n'), /transfer needs both text and image/);
});

test('attribution: scores over (layer, position), IG variant, top-k confirmed by exact patching', async () => {
  const r = await run({ kind: 'attribution', version: 1, topK: 2, limit: 2, igSteps: 2 });
  const exact = (r.table.array('exact') as ArrayLike<number | null>);
  assert.equal(Array.from(exact).filter((x) => x !== null).length, 2 * (r.summary.pairs as unknown[]).length);
  // The metric names its tokens by id and text (a colour bar of bare ids told a reader nothing).
  const metric = String(r.table.get('metric', 0));
  assert.match(metric, /^logit\[\d+ ".+"\] - logit\[\d+ ".+"\]$/);
  assert.equal((viewFromResult(r).data as { metric: string }).metric, metric);
});

test('recovery: backbone -> VLM patching per layer, chain-of-thought vs direct', async () => {
  const r = await run({ kind: 'recovery', version: 1, identifiedOnly: false, limit: 2, layers: [0, 3], cotMaxNewTokens: 4, ...small });
  const conds = new Set(Array.from(r.table.array('condition') as ArrayLike<string>));
  for (const c of ['image', 'text', 'cot', 'patched']) assert.ok(conds.has(c), c);
  // `recovered` on the entity the layer was not chosen on (one of two), and its bootstrap over that one entity:
  // every draw is the same, so the interval is the point (or open, with no gap to recover).
  const s = r.summary as Record<string, any>;
  assert.equal(s.recoveredSelection.reportEntities, 1);
  assert.equal(s.recoveredCI.entities, 1);
  assert.equal(s.recoveredCI.layer, s.recoveredLayer);
  const point = s.recovered === null ? null : s.recovered;
  assert.ok(point === null ? s.recoveredCI.recovered.high === null : s.recoveredCI.recovered.low === point && s.recoveredCI.recovered.high === point, JSON.stringify(s.recoveredCI));
  if (point !== null) assert.match(s.answer, /recovered -?\d\.\d\d of the gap at layer \d+ \(95 % interval/);
});

test('repeated runs leave no tensor behind', async () => {
  for (let i = 0; i < 2; i++) await runExperiment({ kind: 'knockout', version: 1, identifiedOnly: false, limit: 1, accuracy: false, window: 1 }, { model, data });
  assert.equal(tf.memory().numTensors, baseline);
});
