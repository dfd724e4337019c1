// RoPE scaling: LLaVA-MORE's Llama-3.1 frequencies and full-model parity with HF (fixture M), the other
// rope_scaling variants against their defining formulas, and a clear refusal for the unsupported ones.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { ConfigError } from '../../src/errors';
import { parseDecoderConfig } from '../../src/models/config';
import { ropeTables } from '../../src/models/layers';
import { loadModelFromDir } from '../../src/models/load';
import type { Model } from '../../src/models/model';
import { parseRopeScaling, ropeInvFreq } from '../../src/models/rope';
import { FIXTURES2 } from '../fixtures/paths';
import { maxDiff, pixels, readJson } from './helpers';

const TOL = 1e-5;
const DIR = path.join(FIXTURES2, 'llava_more_tiny_M');
const inp = readJson(DIR + '/inputs.json');
const out = readJson(DIR + '/outputs.json');
const textCfg = readJson(DIR + '/config.json').text_config;

before(async () => {
  await initEngine();
});
after(() => shutdownEngine());

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

describe('rope_scaling variants', () => {
  test('llama3: the frequencies HF computed for fixture M (all three bands occur)', () => {
    const cfg = parseDecoderConfig(textCfg);
    assert.equal(cfg.ropeScaling.type, 'llama3');
    const { invFreq, attentionFactor } = ropeInvFreq(cfg.headDim, cfg.ropeTheta, cfg.ropeScaling);
    assert.equal(attentionFactor, 1);
    invFreq.forEach((f, i) => assert.ok(rel(f, out.inv_freq[i]) < 1e-6, `inv_freq[${i}] ${f} vs ${out.inv_freq[i]}`));
    // The middle band really is smoothed: neither kept nor divided by the factor.
    const plain = ropeInvFreq(cfg.headDim, cfg.ropeTheta).invFreq;
    const kinds = [...invFreq].map((f, i) => (f === plain[i] ? 'kept' : rel(f, plain[i] / 8) < 1e-6 ? 'divided' : 'smoothed'));
    assert.deepEqual(new Set(kinds), new Set(['kept', 'divided', 'smoothed']));
  });

  test('linear divides every default frequency by the factor', () => {
    const base = ropeInvFreq(16, 10000).invFreq;
    const lin = ropeInvFreq(16, 10000, parseRopeScaling({ type: 'linear', factor: 4 }, 2048, 'test')).invFreq;
    base.forEach((f, i) => assert.ok(rel(lin[i], f / 4) < 1e-6));
  });

  test('dynamic NTK: default up to max_position_embeddings, then the grown base of HF', () => {
    const s = parseRopeScaling({ rope_type: 'dynamic', factor: 2 }, 64, 'test');
    const base = ropeInvFreq(16, 10000).invFreq;
    assert.deepEqual(ropeInvFreq(16, 10000, s, 64).invFreq, base);
    const grown = ropeInvFreq(16, 10000, s, 100).invFreq;
    const b = 10000 * ((2 * 100) / 64 - 1) ** (16 / 14);
    grown.forEach((f, i) => assert.ok(rel(f, 1 / b ** ((2 * i) / 16)) < 1e-5, `dynamic ${i}`));
    // The decoder feeds it the forward's longest position: tables differ once positions pass the limit.
    const pos = (n: number) => [Int32Array.from({ length: n }, (_, i) => i)];
    const t64 = ropeTables(pos(64), 16, 10000, undefined, s);
    const t65 = ropeTables(pos(65), 16, 10000, undefined, s);
    assert.notDeepEqual(t65.cos.subarray(0, 64 * 16), t64.cos);
  });

  test('yarn: extrapolated high frequencies, interpolated low ones, scaled cos/sin', () => {
    const s = parseRopeScaling({ rope_type: 'yarn', factor: 4 }, 2048, 'test');
    assert.ok(s.type === 'yarn' && Math.abs(s.attentionFactor - (0.1 * Math.log(4) + 1)) < 1e-12);
    const dim = 64;
    const base = ropeInvFreq(dim, 10000).invFreq;
    const { invFreq, attentionFactor } = ropeInvFreq(dim, 10000, s);
    // HF's correction range for beta_fast 32 / beta_slow 1 at max 2048, base 1e4, dim 64: [floor(8.06), ceil(20.1)] = [8, 21]
    for (let i = 0; i <= 8; i++) assert.ok(rel(invFreq[i], base[i]) < 1e-6, `yarn ${i} kept`);
    for (let i = 21; i < dim / 2; i++) assert.ok(rel(invFreq[i], base[i] / 4) < 1e-6, `yarn ${i} interpolated`);
    assert.ok(invFreq[12] < base[12] && invFreq[12] > base[12] / 4);
    const t = ropeTables([Int32Array.of(0)], dim, 10000, undefined, s);
    assert.ok(Math.abs(t.cos[0] - attentionFactor) < 1e-6);
  });

  test('rope_type and the legacy type key are both read; unknown types are refused by name', () => {
    assert.equal(parseRopeScaling({ type: 'linear', factor: 2 }, 10, 't').type, 'linear');
    assert.equal(parseRopeScaling(null, 10, 't').type, 'default');
    assert.throws(
      () => parseDecoderConfig({ ...textCfg, rope_scaling: { rope_type: 'longrope', short_factor: [1], long_factor: [1] } }),
      (e: Error) => e instanceof ConfigError && /"longrope"/.test(e.message) && /llama3/.test(e.message) && /yarn/.test(e.message),
    );
    assert.throws(() => parseDecoderConfig({ ...textCfg, rope_scaling: { rope_type: 'llama3', factor: 8 } }), /low_freq_factor is missing/);
  });
});

describe('llava_more_tiny_M (LLaVA-MORE shape: CLIP + Llama-3.1 RoPE) parity with HF', () => {
  let model: Model;
  let px: tf.Tensor;
  before(() => {
    model = loadModelFromDir(DIR);
    px = pixels(inp.pixel_values);
  });
  after(() => {
    model.dispose();
    px.dispose();
  });
  const hiddenNames = () => [...Array.from({ length: model.numLayers }, (_, i) => `lm.blocks.${i}.resid_pre`), 'lm.final_norm'];

  test('logits, every hidden state and image features within 1e-5', () => {
    const r = model.forward({ inputIds: inp.input_ids, attentionMask: inp.attention_mask, pixelValues: px }, { cache: [...hiddenNames(), 'projector.out'] });
    try {
      const rows = (inp.attention_mask as number[][]).flat();
      assert.ok(maxDiff(r.logits!, out.logits, rows, model.vocabSize) < TOL, `logits ${maxDiff(r.logits!, out.logits)}`);
      assert.equal(out.hidden_states.length, model.numLayers + 1);
      hiddenNames().forEach((n, i) => {
        const d = maxDiff(r.cache.get(n)!, out.hidden_states[i], rows, model.dModel);
        assert.ok(d < TOL, `hidden_states[${i}] (${n}) differs by ${d}`);
      });
      assert.ok(maxDiff(r.cache.get('projector.out')!, out.image_features) < TOL);
    } finally {
      r.dispose();
    }
  });

  test('ignoring the scaling is caught: logits move beyond the tolerance', () => {
    const unscaled = loadModelFromDir(DIR);
    try {
      (unscaled.text as { ropeScaling: unknown }).ropeScaling = { type: 'default' };
      const r = unscaled.forward({ inputIds: inp.input_ids, attentionMask: inp.attention_mask, pixelValues: px });
      const d = maxDiff(r.logits!, out.logits);
      r.dispose();
      assert.ok(d > 1e-3, `unscaled logits differ by only ${d}`);
    } finally {
      unscaled.dispose();
    }
  });

  test('greedy generation: tokens and step logits', () => {
    const g = out.generation;
    const row = g.input_row;
    const rowPx = px.slice([row], [1]);
    const res = model.generate(
      { inputIds: [inp.input_ids[row]], attentionMask: [inp.attention_mask[row]], pixelValues: rowPx },
      { maxNewTokens: g.max_new_tokens, returnStepLogits: true },
    );
    rowPx.dispose();
    assert.deepEqual(res.newTokens[0], g.new_tokens);
    const steps = Float32Array.from(res.stepLogits!.flatMap((s) => [...s[0]]));
    assert.ok(maxDiff(steps, g.step_logits) < TOL, `step logits ${maxDiff(steps, g.step_logits)}`);
  });
});
