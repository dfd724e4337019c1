// Hook points do exactly what they say: identity hooks are bit-identical, a one-position edit changes
// only what causality allows, start/stop-at-layer equals the full run, memory returns to baseline.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { loadModelFromDir } from '../../src/models/load';
import type { Model, ModelInputs } from '../../src/models/model';
import { fixture, pixels, readJson } from './helpers';

let model: Model;
let inputs: ModelInputs;
before(async () => {
  await initEngine();
  model = loadModelFromDir(fixture('llava_tiny_A'));
  const inp = readJson(fixture('llava_tiny_A') + '/inputs.json');
  inputs = { inputIds: inp.input_ids, attentionMask: inp.attention_mask, pixelValues: pixels(inp.pixel_values) };
});
after(() => {
  model.dispose();
  inputs.pixelValues?.dispose();
  shutdownEngine();
});

function logits(opts = {}): Float32Array {
  const r = model.forward(inputs, opts);
  const l = r.logits!.dataSync() as Float32Array;
  r.dispose();
  return Float32Array.from(l);
}

test('the model lists its hook points, with axes, in one vocabulary', () => {
  const names = model.hookPoints().map((h) => h.name);
  for (const n of ['vision.embed', 'vision.blocks.0.resid_post', 'vision.features', 'projector.out', 'lm.embed', 'lm.blocks.3.resid_pre', 'lm.blocks.3.attn.pattern', 'lm.blocks.0.mlp_out', 'lm.final_norm', 'lm.logits'])
    assert.ok(names.includes(n), `missing ${n}`);
  assert.equal(new Set(names).size, names.length, 'names are unique');
  assert.ok(model.hookPoints().every((h) => h.axes.length >= 2));
});

test('identity hooks on every point leave logits bit-identical', () => {
  const base = logits();
  const hooks = Object.fromEntries(model.hookPoints().map((h) => [h.name, (v: tf.Tensor) => v]));
  const r = model.forward(inputs, { hooks });
  const same = r.logits!.dataSync();
  assert.deepEqual(r.unusedHooks, []);
  r.dispose();
  assert.deepEqual(Float32Array.from(same), base);
});

test("logits: 'last' runs the head on the last position only, equal to the full run's last row; a hook on lm.logits keeps every position", () => {
  const base = logits();
  const T = inputs.inputIds[0].length;
  const V = model.vocabSize;
  const B = inputs.inputIds.length;
  const r = model.forward(inputs, { logits: 'last' });
  assert.deepEqual(r.logits!.shape, [B, 1, V]);
  const last = Float32Array.from(r.logits!.dataSync());
  r.dispose();
  // Within float rounding, not bit for bit: the last block then runs its products on B rows instead of B·T, and
  // BLAS may round a product of other shapes differently (the stock kernels happen to agree exactly).
  for (let b = 0; b < B; b++) assert.ok(maxDiff(last.subarray(b * V, (b + 1) * V), base.subarray((b * T + T - 1) * V, (b * T + T) * V)) < 1e-5);
  let seen: { offset: number; shape: number[] } | null = null;
  const hooked = model.forward(inputs, { logits: 'last', hooks: { 'lm.logits': (v, info) => void (seen = { offset: info.offset, shape: v.shape }) } });
  assert.deepEqual(hooked.logits!.shape, [B, T, V], 'a hook on lm.logits sees every position');
  assert.deepEqual(seen, { offset: 0, shape: [B, T, V] });
  hooked.dispose();
});

test("logits: 'last' runs the last block for the last position only, unless something is hooked after its input; the logits are the full run's", () => {
  const L = model.numLayers;
  const T = inputs.inputIds[0].length;
  const B = inputs.inputIds.length;
  const V = model.vocabSize;
  // A mask per query row at the last layer (the last query may not read the image), so slicing the rows matters.
  const lastRowBlocked = (layer: number, ev: { tq: number; tk: number; offset: number }) => {
    if (layer !== L - 1) return null;
    const m = new Float32Array(ev.tq * ev.tk);
    for (let q = 0; q < ev.tq; q++)
      if (ev.offset + q === T - 1) inputs.inputIds[0].forEach((id, s) => (m[q * ev.tk + s] = id === 299 ? -1e30 : 0));
    return tf.tensor4d(m, [1, 1, ev.tq, ev.tk]);
  };
  for (const attnMask of [undefined, lastRowBlocked]) {
    const full = model.forward(inputs, { attnMask });
    const want = tf.tidy(() => full.logits!.slice([0, T - 1, 0], [B, 1, V]).dataSync());
    const pruned = model.forward(inputs, { logits: 'last', attnMask });
    assert.deepEqual(pruned.hidden.shape, [B, 1, model.dModel], 'the last block ran for the last position alone');
    assert.ok(maxDiff(pruned.logits!.dataSync() as Float32Array, want as Float32Array) < 1e-5);
    // A hook after the last block's input sees every position: nothing is pruned.
    const seen: number[][] = [];
    const hooked = model.forward(inputs, { logits: 'last', attnMask, hooks: { [`lm.blocks.${L - 1}.mlp_out`]: (v) => void seen.push(v.shape) } });
    assert.deepEqual(seen, [[B, T, model.dModel]]);
    assert.deepEqual(hooked.hidden.shape, [B, T, model.dModel]);
    assert.ok(maxDiff(hooked.logits!.dataSync() as Float32Array, want as Float32Array) < 1e-5);
    // A hook on the last block's input still runs (a patch there is the cross-patching sweep's last layer).
    const edited = model.forward(inputs, { logits: 'last', attnMask, hooks: { [`lm.blocks.${L - 1}.resid_pre`]: (v) => tf.mul(v, 1.5) } });
    const editedFull = model.forward(inputs, { attnMask, hooks: { [`lm.blocks.${L - 1}.resid_pre`]: (v) => tf.mul(v, 1.5) } });
    const editedWant = tf.tidy(() => editedFull.logits!.slice([0, T - 1, 0], [B, 1, V]).dataSync());
    assert.ok(maxDiff(edited.logits!.dataSync() as Float32Array, editedWant as Float32Array) < 1e-5);
    assert.ok(maxDiff(edited.logits!.dataSync() as Float32Array, want as Float32Array) > 1e-3, 'the edit changed the answer');
    for (const r of [full, pruned, hooked, edited, editedFull]) r.dispose();
  }
});

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('an edit at one position changes only that position and later ones', () => {
  const layer = 2;
  const pos = 20;
  const base = logits();
  const edited = logits({
    hooks: {
      [`lm.blocks.${layer}.resid_pre`]: (v: tf.Tensor) => {
        const [B, T, D] = v.shape as number[];
        const bump = tf.buffer([B, T, D]);
        for (let d = 0; d < D; d++) bump.set(0.5, 0, pos, d);
        return tf.add(v, bump.toTensor());
      },
    },
  });
  const T = inputs.inputIds[0].length;
  const V = model.vocabSize;
  for (let b = 0; b < 2; b++)
    for (let t = 0; t < T; t++) {
      let diff = 0;
      for (let i = 0; i < V; i++) diff = Math.max(diff, Math.abs(base[(b * T + t) * V + i] - edited[(b * T + t) * V + i]));
      if (b === 0 && t >= pos) assert.ok(diff > 1e-6, `row 0 position ${t} should change`);
      else assert.equal(diff, 0, `row ${b} position ${t} must not change`);
    }
});

test('caching returns the requested values and nothing else; unknown hooks are reported', () => {
  const r = model.forward(inputs, { cache: ['lm.blocks.1.resid_post', 'projector.out'], hooks: { 'lm.blocks.99.resid_pre': (v) => v } });
  assert.deepEqual([...r.cache.keys()].sort(), ['lm.blocks.1.resid_post', 'projector.out']);
  assert.deepEqual(r.cache.get('projector.out')!.shape, [2, 16, 64]);
  assert.deepEqual(r.unusedHooks, ['lm.blocks.99.resid_pre']);
  r.dispose();
});

test('start at layer k from cached residuals and stop at layer m reproduce the full run', () => {
  const full = model.forward(inputs, { cache: ['lm.blocks.2.resid_pre', 'lm.blocks.2.resid_post'] });
  const start = model.forward(inputs, { startLayer: 2, startResid: full.cache.get('lm.blocks.2.resid_pre') });
  assert.deepEqual(Float32Array.from(start.logits!.dataSync()), Float32Array.from(full.logits!.dataSync()));
  const stop = model.forward(inputs, { stopLayer: 3 });
  assert.equal(stop.logits, undefined);
  assert.deepEqual(Float32Array.from(stop.hidden.dataSync()), Float32Array.from(full.cache.get('lm.blocks.2.resid_post')!.dataSync()));
  full.dispose();
  start.dispose();
  stop.dispose();
});

test('an additive attention mask that blocks nothing is a no-op; blocking the image changes later tokens', () => {
  const base = logits();
  const zero = logits({ attnMask: () => tf.zeros([1, 1, 1, 1]) });
  assert.deepEqual(zero, base);
  const blocked = logits({
    attnMask: (_l: number, ev: { tk: number }) => {
      const m = new Float32Array(ev.tk);
      inputs.inputIds[0].forEach((id, s) => (m[s] = id === 299 ? -1e30 : 0));
      return tf.tensor4d(m, [1, 1, 1, ev.tk]);
    },
  });
  assert.notDeepEqual(blocked, base);
});

test('repeated forwards and generations leave tf.memory().numTensors at its baseline', () => {
  logits();
  const baseline = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) {
    const r = model.forward(inputs, { cache: ['lm.blocks.0.attn.pattern'], hooks: { 'lm.blocks.1.resid_pre': (v) => tf.mul(v, 1) } });
    r.dispose();
    const px = inputs.pixelValues!.slice([0], [1]);
    const g = model.generate({ inputIds: [inputs.inputIds[0]], pixelValues: px }, { maxNewTokens: 3, run: { cache: ['lm.blocks.0.resid_post'] } });
    tf.dispose([...g.cache.values(), px]);
  }
  assert.equal(tf.memory().numTensors, baseline);
});

test('bad inputs: wrong image token count, ragged rows, out-of-vocab ids, wrong pixel shape', () => {
  assert.throws(() => model.forward({ inputIds: inputs.inputIds }), /16|image tokens/);
  assert.throws(() => model.forward({ inputIds: [[1, 2, 3], [1, 2]] }), /pad rows/);
  assert.throws(() => model.forward({ inputIds: [[1, 5000]] }), /outside the vocabulary/);
  const bad = tf.zeros([2, 3, 14, 14]);
  assert.throws(() => model.forward({ ...inputs, pixelValues: bad }), /pixel_values must be/);
  bad.dispose();
});
