// Interventions on fixture A against references computed another way: a self-patch is bit-identical,
// freezing equals a hand-written per-layer loop, knocking out image→later edges equals running without
// the image (explicit positions), decode-step knockout equals a full forward, padding changes nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { compileInterventions, intervene, plainRows } from '../../src/interventions/compile';
import { NoOpError } from '../../src/interventions/guard';
import { spansFromIds, type RowGeometry } from '../../src/interventions/selectors';
import type { InterventionSpec } from '../../src/interventions/types';
import type { Model } from '../../src/models/model';
import { fixtureImages, fixtureJson, IMG, inputsA, loadFixture, pixels } from '../experiments/fixture-data';

let model: Model;
let baseline = 0;
before(async () => {
  await initEngine();
  model = loadFixture('llava_tiny_A');
  baseline = tf.memory().numTensors;
});
after(() => {
  model.dispose();
  shutdownEngine();
});

const A = () => fixtureJson('llava_tiny_A', 'inputs.json').input_ids as number[][];
const spansOf = (ids: number[]) => spansFromIds(ids, { imageTokenId: IMG });

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function logitsOf(out: { logits?: tf.Tensor }): Float32Array {
  return out.logits!.dataSync() as Float32Array;
}

test('patching a layer with the run\'s own states is a no-op: bit-identical logits, reported, strict throws', () => {
  const inputs = inputsA();
  const rows = plainRows(A().map(spansOf));
  const clean = model.forward(inputs, { cache: ['lm.blocks.2.resid_pre'] });
  const sources = { self: { cache: clean.cache, rows } };
  const spec: InterventionSpec[] = [{ kind: 'patch', layers: [2], at: 'image', source: { cache: 'self' } }];
  const { output, report } = intervene(model, inputs, spec, { rows, sources });
  assert.deepEqual(Array.from(logitsOf(output)), Array.from(logitsOf(clean)));
  assert.equal(report.warnings.length, 1);
  assert.match(report.warnings[0], /equals the value it replaced/);
  assert.equal(report.interventions[0].touched, 32);
  output.dispose();
  assert.throws(() => intervene(model, inputs, spec, { rows, sources, strict: true }), NoOpError);
  // A hook the model never reaches is reported too.
  const { output: o2, report: r2 } = intervene(model, inputs, [{ kind: 'steer', hook: 'lm.blocks.9.resid_pre', at: 'last', vector: new Array(64).fill(1) }], { rows });
  assert.match(r2.warnings.join(' '), /lm\.blocks\.9\.resid_pre was never reached/);
  o2.dispose();
  clean.dispose();
  inputs.pixelValues.dispose();
  assert.equal(tf.memory().numTensors, baseline);
});

test('freezing image tokens from block l through T equals an explicit per-layer loop', () => {
  const ids = [A()[1]];
  const inputs = { inputIds: ids, pixelValues: pixels([fixtureImages()[1]]) };
  const spans = spansOf(ids[0]);
  const img = spans.images[0];
  const [from, until] = [0, 2];
  const { output, report } = intervene(model, inputs, [{ kind: 'freeze', from, until, at: 'image' }], { rows: plainRows([spans]) });
  assert.deepEqual(report.warnings, []);
  // By hand: run one block at a time; before blocks from+1..until, overwrite the image rows with block `from`'s output.
  const D = model.dModel;
  const T = ids[0].length;
  const e = model.forward(inputs, { cache: ['lm.embed'], stopLayer: 0 });
  let h = e.cache.get('lm.embed')!.dataSync().slice() as Float32Array;
  e.dispose();
  let frozen: Float32Array | null = null;
  for (let j = 0; j < model.numLayers; j++) {
    if (j > from && j <= until)
      for (let p = img.start; p < img.start + img.length; p++) h.set(frozen!.subarray(p * D, (p + 1) * D), p * D);
    const start = tf.tensor3d(h, [1, T, D]);
    const step = model.forward({ inputIds: ids }, { startLayer: j, startResid: start, stopLayer: j + 1 });
    h = step.hidden.dataSync().slice() as Float32Array;
    step.dispose();
    start.dispose();
    if (j === from) frozen = h.slice();
  }
  const last = tf.tensor3d(h, [1, T, D]);
  const ref = tf.tidy(() => model.decoder.unembed(last));
  const d = maxDiff(logitsOf(output), ref.dataSync());
  assert.ok(d < 1e-5, `freeze vs by-hand loop: max |diff| ${d}`);
  tf.dispose([last, ref, inputs.pixelValues]);
  output.dispose();
});

test('knocking out image -> later positions in every layer equals running without the image at the same positions', () => {
  const ids = A()[0];
  const spans = spansOf(ids);
  const img = spans.images[0];
  const inputs = { inputIds: [ids], pixelValues: pixels([fixtureImages()[0]]) };
  const layers = Array.from({ length: model.numLayers }, (_, i) => i);
  const { output, report } = intervene(model, inputs, [{ kind: 'knockout', layers, from: 'image', to: { kind: 'after-image' } }], { rows: plainRows([spans]) });
  assert.ok(report.interventions[0].touched > 0 && report.warnings.length === 0);
  // Reference: drop the image tokens and keep every other token's original position id.
  const keep = ids.map((_, i) => i).filter((i) => i < img.start || i >= img.start + img.length);
  const ref = model.forward({ inputIds: [keep.map((i) => ids[i])], positionIds: [keep] });
  const V = model.vocabSize;
  const got = logitsOf(output);
  const want = logitsOf(ref);
  const after = keep.map((p, k) => [p, k]).filter(([p]) => p >= img.start + img.length);
  let d = 0;
  for (const [p, k] of after) d = Math.max(d, maxDiff(got.subarray(p * V, (p + 1) * V), want.subarray(k * V, (k + 1) * V)));
  assert.ok(d < 1e-5, `knockout vs image removed: max |diff| ${d}`);
  // Without the knockout the image matters: the comparison is not vacuous.
  const clean = model.forward(inputs);
  const [p, k] = after[after.length - 1];
  assert.ok(maxDiff(logitsOf(clean).subarray(p * V, (p + 1) * V), want.subarray(k * V, (k + 1) * V)) > 1e-4);
  tf.dispose(inputs.pixelValues);
  [output, ref, clean].forEach((o) => o.dispose());
});

test('knockout at decode steps (image -> query + generated) equals full forwards of the grown prompt', () => {
  const ids = A()[0];
  const px = pixels([fixtureImages()[0]]);
  const layers = [1, 2];
  const spec = (extra: boolean): InterventionSpec[] => [
    { kind: 'knockout', layers, from: 'image', to: extra ? { kind: 'union', of: [{ kind: 'after-image' }, { kind: 'generated' }] } : { kind: 'after-image' } },
  ];
  const T = ids.length;
  const compiled = compileInterventions(spec(true), { rows: [{ spans: spansOf(ids), offset: 0, promptLength: T }], numHeads: model.text.numHeads, numLayers: model.numLayers });
  const g = model.generate({ inputIds: [ids], pixelValues: px }, { maxNewTokens: 4, run: compiled.run, returnStepLogits: true, eosTokenId: null });
  compiled.dispose();
  const toks = g.newTokens[0];
  for (let s = 1; s < toks.length; s++) {
    const grown = [...ids, ...toks.slice(0, s)];
    const { output } = intervene(model, { inputIds: [grown], pixelValues: px }, spec(false), { rows: plainRows([spansOf(grown)]) });
    const V = model.vocabSize;
    const full = logitsOf(output).subarray((grown.length - 1) * V, grown.length * V);
    const d = maxDiff(g.stepLogits![s][0], full);
    assert.ok(d < 1e-5, `step ${s}: max |diff| ${d}`);
    output.dispose();
  }
  px.dispose();
});

test('patch, knockout, steer and ablate give the same results with and without left padding (fixture G)', () => {
  const g = fixtureJson('llava_tiny_A_padded_G', 'inputs.json');
  const ids: number[][] = g.left.input_ids;
  const mask: number[][] = g.left.attention_mask;
  const lengths: number[] = g.lengths;
  const T = ids[0].length;
  const imgs = (g.pixel_values as number[][][][]).map((x) => x.flat(2));
  const own = ids.map((r, b) => r.slice(T - lengths[b]));
  const rows: RowGeometry[] = own.map((r, b) => ({ spans: spansOf(r), offset: T - lengths[b], promptLength: T }));
  const px = pixels(imgs);
  // Donor states: row 0 of the same padded batch (its image tokens sit at the same positions of its own prompt).
  const donor = model.forward({ inputIds: ids, attentionMask: mask, pixelValues: px }, { cache: ['lm.blocks.1.resid_pre'] });
  const sources = { donor: { cache: donor.cache, rows } };
  const specs: InterventionSpec[] = [
    { kind: 'patch', layers: [1], at: 'image', source: { cache: 'donor', row: 0 }, rows: [1, 2] },
    { kind: 'knockout', layers: [2, 3], from: 'image', to: 'last' },
    { kind: 'steer', layers: [0], at: 'query', vector: new Array(64).fill(0.05) },
    { kind: 'ablate', layers: [3], site: 'attn_out', at: 'image-last', mode: 'zero' },
  ];
  const { output, report } = intervene(model, { inputIds: ids, attentionMask: mask, pixelValues: px }, specs, { rows, sources });
  assert.deepEqual(report.warnings, []);
  const V = model.vocabSize;
  const padded = logitsOf(output);
  for (let b = 0; b < 3; b++) {
    const px1 = pixels([imgs[b]]);
    const single = specs.map((s) => ({ ...s, rows: s.rows ? (s.rows.includes(b) ? [0] : []) : undefined })) as InterventionSpec[];
    const active = single.filter((s) => !s.rows || s.rows.length);
    const { output: o1 } = intervene(model, { inputIds: [own[b]], pixelValues: px1 }, active, { rows: [{ spans: rows[b].spans, offset: 0, promptLength: lengths[b] }], sources });
    const u = logitsOf(o1);
    const L = lengths[b];
    const d = maxDiff(padded.subarray((b * T + T - 1) * V, (b * T + T) * V), u.subarray((L - 1) * V, L * V));
    assert.ok(d < 2e-6, `row ${b}: padded vs unpadded max |diff| ${d}`);
    o1.dispose();
    px1.dispose();
  }
  output.dispose();
  donor.dispose();
  px.dispose();
  assert.equal(tf.memory().numTensors, baseline);
});

test('ablate and steer write exactly where selected; specs that select nothing are reported', () => {
  const inputs = inputsA();
  const rows = plainRows(A().map(spansOf));
  const { output, report } = intervene(
    model,
    inputs,
    [
      { kind: 'ablate', layers: [1], at: 'image', mode: 'mean' },
      { kind: 'steer', layers: [2], at: { kind: 'generated' }, vector: new Array(64).fill(1) },
    ],
    { rows, base: { cache: ['lm.blocks.1.resid_pre'] } },
  );
  const h = output.cache.get('lm.blocks.1.resid_pre')!;
  // Every image row of the ablated state equals the image mean of that row.
  const img = tf.tidy(() => h.slice([0, 4, 0], [1, 16, 64]));
  const spread = tf.tidy(() => tf.max(tf.abs(tf.sub(img, tf.mean(img, 1, true))))).dataSync()[0];
  assert.ok(spread < 1e-6, `mean ablation spread ${spread}`);
  assert.match(report.warnings.join(' '), /selected no position/);
  tf.dispose(img);
  output.dispose();
  inputs.pixelValues.dispose();
});
