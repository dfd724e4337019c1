// Llama-3.2-Vision (mllama) parity with HF transformers 4.45.2 (fixture mllama_tiny_H): vision output,
// cross-attention states, logits and all L+1 hidden states (self- and cross-attention layers alike) within 1e-5,
// greedy generation with cross-attention K/V computed once; the cross-attention hooks act as documented.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { InputError } from '../../src/errors';
import { imagePrepFor } from '../../src/experiments/assets';
import { canonicalName } from '../../src/io/checkpoint';
import { mllamaCrossAttentionMask } from '../../src/io/processors';
import { loadModelFromDir } from '../../src/models/load';
import type { ModelInputs } from '../../src/models/model';
import type { MllamaModel } from '../../src/models/mllama/model';
import { FIXTURES2 } from '../fixtures/paths';
import { maxDiff, pixels, readJson } from './helpers';

const TOL = 1e-5;
const DIR = path.join(FIXTURES2, 'mllama_tiny_H');
const inp = readJson(DIR + '/inputs.json');
const out = readJson(DIR + '/outputs.json');

let model: MllamaModel;
let px: tf.Tensor;
before(async () => {
  await initEngine();
  model = loadModelFromDir(DIR) as MllamaModel;
  px = pixels(inp.pixel_values);
});
after(() => {
  model.dispose();
  px.dispose();
  shutdownEngine();
});

const inputs = (over: Partial<ModelInputs> = {}): ModelInputs => ({
  inputIds: inp.input_ids,
  attentionMask: inp.attention_mask,
  pixelValues: px,
  aspectRatioIds: inp.aspect_ratio_ids,
  aspectRatioMask: inp.aspect_ratio_mask,
  crossAttentionMask: inp.cross_attention_mask,
  ...over,
});
const hiddenNames = () => [...Array.from({ length: model.numLayers }, (_, i) => `lm.blocks.${i}.resid_pre`), 'lm.final_norm'];
const rows = (inp.attention_mask as number[][]).flat();

describe('mllama_tiny_H parity', () => {
  test('the family says how images reach the LM', () => {
    assert.equal(model.family, 'mllama');
    assert.equal(model.imageInput, 'cross-attention');
    assert.deepEqual(model.config.crossAttentionLayers, [1, 3]);
    assert.deepEqual(model.selfAttentionLayers, [0, 2, 4]);
  });

  test('the transformers >= 4.52 tensor layout maps back to the canonical names', () => {
    assert.equal(canonicalName('model.language_model.layers.1.cross_attn.q_norm.weight', 'mllama'), 'language_model.model.layers.1.cross_attn.q_norm.weight');
    assert.equal(canonicalName('model.vision_model.class_embedding', 'mllama'), 'vision_model.class_embedding');
    assert.equal(canonicalName('model.multi_modal_projector.bias', 'mllama'), 'multi_modal_projector.bias');
    assert.equal(canonicalName('lm_head.weight', 'mllama'), 'language_model.lm_head.weight');
    assert.equal(canonicalName('vision_model.class_embedding', 'mllama'), 'vision_model.class_embedding');
  });

  test('experiments that place images at token positions refuse with the reason', () => {
    assert.throws(() => imagePrepFor(model), (e: Error) => e instanceof InputError && /cross-attention/.test(e.message) && /no image positions/.test(e.message));
  });

  test('vision output, cross-attention states, logits and all L+1 hidden states within 1e-5', () => {
    const r = model.forward(inputs(), { cache: [...hiddenNames(), 'vision.output', 'vision.cross_attention_states'] });
    try {
      assert.ok(maxDiff(r.cache.get('vision.output')!, out.vision_output) < TOL, 'vision_output');
      assert.ok(maxDiff(r.cache.get('vision.cross_attention_states')!, out.cross_attention_states) < TOL, 'cross_attention_states');
      const d = maxDiff(r.logits!, out.logits, rows, model.vocabSize);
      assert.ok(d < TOL, `logits ${d}`);
      assert.equal(out.hidden_states.length, model.numLayers + 1);
      hiddenNames().forEach((n, i) => {
        const h = maxDiff(r.cache.get(n)!, out.hidden_states[i], rows, model.dModel);
        assert.ok(h < TOL, `hidden_states[${i}] (${n}) differs by ${h}`);
      });
      assert.deepEqual(r.unusedHooks, []);
    } finally {
      r.dispose();
    }
  });

  test('the cross-attention mask built from the ids as MllamaProcessor does equals the given one', () => {
    const numTiles: number[][] = inp.num_tiles;
    assert.deepEqual(mllamaCrossAttentionMask(inp.input_ids, inp.image_token_index, numTiles, 4), inp.cross_attention_mask);
    const r = model.forward(inputs({ crossAttentionMask: undefined }));
    const d = maxDiff(r.logits!, out.logits, rows, model.vocabSize);
    r.dispose();
    assert.ok(d < TOL, `logits with the built mask ${d}`);
  });

  test('greedy generation: tokens and step logits (cross K/V once, the last prompt row masks new tokens)', () => {
    const g = out.generation;
    const row = g.input_row;
    const rowPx = px.slice([row], [1]);
    const res = model.generate(
      {
        inputIds: [inp.input_ids[row]],
        attentionMask: [inp.attention_mask[row]],
        pixelValues: rowPx,
        aspectRatioIds: [inp.aspect_ratio_ids[row]],
        aspectRatioMask: [inp.aspect_ratio_mask[row]],
        crossAttentionMask: [inp.cross_attention_mask[row]],
      },
      { maxNewTokens: g.max_new_tokens, returnStepLogits: true },
    );
    rowPx.dispose();
    assert.deepEqual(res.newTokens[0], g.new_tokens);
    const steps = Float32Array.from(res.stepLogits!.flatMap((s) => [...s[0]]));
    assert.ok(maxDiff(steps, g.step_logits) < TOL, `step logits ${maxDiff(steps, g.step_logits)}`);
  });

  test('batched left-padded generation: row 0 generates the tokens of HF', () => {
    const res = model.generate(inputs(), { maxNewTokens: out.generation.max_new_tokens });
    assert.deepEqual(res.newTokens[0], out.generation.new_tokens);
    assert.equal(res.newTokens[1].length, out.generation.max_new_tokens);
  });

  test('a run started at layer 2 still reads the image in cross-attention layer 3', () => {
    const full = model.forward(inputs(), { cache: ['lm.blocks.2.resid_pre'] });
    const start = full.cache.get('lm.blocks.2.resid_pre')!;
    const r = model.forward(inputs(), { startLayer: 2, startResid: start });
    try {
      assert.ok(maxDiff(r.logits!, full.logits!.dataSync() as Float32Array, rows, model.vocabSize) < 1e-6);
    } finally {
      r.dispose();
      full.dispose();
    }
  });
});

describe('mllama hook points', () => {
  test('listed in execution order: cross layers have xattn_out and xattn.pattern, not attn_out', () => {
    const names = model.hookPoints().map((h) => h.name);
    for (const n of ['vision.cross_attention_states', 'vision.output', 'vision.global.blocks.1.resid_post', 'lm.blocks.1.xattn_out', 'lm.blocks.1.xattn.pattern', 'lm.blocks.0.attn_out', 'lm.blocks.2.attn.pattern'])
      assert.ok(names.includes(n), n);
    assert.ok(!names.includes('lm.blocks.1.attn_out') && !names.includes('lm.blocks.0.xattn_out'));
    assert.ok(names.indexOf('vision.cross_attention_states') < names.indexOf('lm.embed'));
    assert.equal(new Set(names).size, names.length);
  });

  test('every listed hook point is reached by a forward with an image', () => {
    const names = model.hookPoints().map((h) => h.name);
    const r = model.forward(inputs(), { cache: names });
    try {
      assert.deepEqual(names.filter((n) => !r.cache.has(n)), []);
      const pat = r.cache.get('lm.blocks.3.xattn.pattern')!;
      assert.deepEqual(pat.shape, [2, 4, 12, 4 * 17]);
      // Row 0's tile 4 is padding: text that sees the image puts no weight there; tokens before <|image|> see all tiles.
      const p = pat.arraySync() as number[][][][];
      const tile4 = (t: number) => p[0][0][t].slice(3 * 17).reduce((a, x) => a + x, 0);
      assert.ok(tile4(6) < 1e-12 && tile4(1) > 0.01, `tile-4 weight ${tile4(6)} after, ${tile4(1)} before the image`);
    } finally {
      r.dispose();
    }
  });

  test('editing vision.cross_attention_states changes the output; swapping in its own value is a no-op', () => {
    const base = model.forward(inputs(), { cache: ['vision.cross_attention_states'] });
    const own = base.cache.get('vision.cross_attention_states')!;
    const same = model.forward(inputs(), { hooks: { 'vision.cross_attention_states': () => own } });
    const zero = model.forward(inputs(), { hooks: { 'vision.cross_attention_states': (v) => tf.zerosLike(v) } });
    const viaFeatures = model.forward(inputs({ pixelValues: undefined, imageFeatures: own }));
    try {
      assert.equal(maxDiff(same.logits!, base.logits!.dataSync() as Float32Array), 0);
      assert.equal(maxDiff(viaFeatures.logits!, base.logits!.dataSync() as Float32Array), 0);
      // Only positions after <|image|> read the image: row 0 from position 4 on.
      const a = base.logits!.slice([0, 6, 0], [1, 1, -1]);
      const b = zero.logits!.slice([0, 6, 0], [1, 1, -1]);
      assert.ok(maxDiff(a, b.dataSync() as Float32Array) > 1e-3);
      tf.dispose([a, b]);
    } finally {
      [base, same, zero, viaFeatures].forEach((r) => r.dispose());
    }
  });

  test('per-layer cross-patching: lm.blocks.N.xattn.states swaps the states one layer reads, once per run', () => {
    const donor = tf.randomNormal([2, 4 * 17, model.dModel], 0, 1, 'float32', 11);
    const swap = () => donor;
    const base = model.forward(inputs());
    const all = model.forward(inputs(), { hooks: { 'vision.cross_attention_states': swap } });
    const both = model.forward(inputs(), { hooks: { 'lm.blocks.1.xattn.states': swap, 'lm.blocks.3.xattn.states': swap } });
    const one = model.forward(inputs(), { hooks: { 'lm.blocks.1.xattn.states': swap } });
    try {
      assert.equal(maxDiff(both.logits!, all.logits!.dataSync() as Float32Array), 0, 'every layer swapped = the states swapped');
      const b = base.logits!.dataSync() as Float32Array;
      assert.ok(maxDiff(one.logits!, b, rows, model.vocabSize) > 1e-4 && maxDiff(one.logits!, all.logits!.dataSync() as Float32Array, rows, model.vocabSize) > 1e-4);
      let calls = 0;
      const row0 = donor.slice([0], [1]);
      const g = model.generate(
        { ...inputs(), inputIds: [inp.input_ids[0]], attentionMask: [inp.attention_mask[0]], pixelValues: undefined, imageFeatures: row0, crossAttentionMask: [inp.cross_attention_mask[0]] },
        { maxNewTokens: 3, run: { hooks: { 'lm.blocks.3.xattn.states': () => void calls++ } } },
      );
      row0.dispose();
      assert.equal(g.newTokens[0].length, 3);
      assert.equal(calls, 1, 'keys/values are computed once per generation');
    } finally {
      [base, all, both, one].forEach((r) => r.dispose());
      donor.dispose();
    }
  });

  test('knocking out every text → vision edge removes the influence of the image (and blocking nothing changes nothing)', () => {
    const all = (_l: number, ev: { tq: number; tk: number }) => tf.fill([1, 1, ev.tq, ev.tk], -1e30);
    const base = model.forward(inputs());
    const none = model.forward(inputs(), { crossAttnMask: (_l, ev) => tf.zeros([1, 1, ev.tq, ev.tk]) });
    const ko = model.forward(inputs(), { crossAttnMask: all });
    const koOther = model.forward(inputs(), { crossAttnMask: all, hooks: { 'vision.cross_attention_states': (v) => tf.randomNormal(v.shape as number[], 0, 1, 'float32', 3) } });
    try {
      assert.equal(maxDiff(none.logits!, base.logits!.dataSync() as Float32Array), 0);
      assert.ok(maxDiff(ko.logits!, base.logits!.dataSync() as Float32Array, rows, model.vocabSize) > 1e-3);
      assert.ok(maxDiff(ko.logits!, koOther.logits!.dataSync() as Float32Array, rows, model.vocabSize) < 1e-6, 'the image still matters');
    } finally {
      [base, none, ko, koOther].forEach((r) => r.dispose());
    }
  });

  test('text-only inputs skip the cross-attention layers (HF); bad inputs are refused', () => {
    const r = model.forward({ inputIds: [[1, 13, 50]] }, { cache: ['lm.blocks.0.resid_post', 'lm.blocks.2.resid_pre', 'lm.blocks.1.xattn_out'] });
    try {
      assert.equal(maxDiff(r.cache.get('lm.blocks.0.resid_post')!, r.cache.get('lm.blocks.2.resid_pre')!.dataSync() as Float32Array), 0);
      assert.ok(!r.cache.has('lm.blocks.1.xattn_out'));
    } finally {
      r.dispose();
    }
    assert.throws(() => model.forward(inputs({ aspectRatioIds: undefined })), InputError);
    assert.throws(() => model.forward(inputs({ crossAttentionMask: [inp.cross_attention_mask[0]] })), /crossAttentionMask must be/);
  });
});
