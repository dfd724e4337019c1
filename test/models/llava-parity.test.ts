// Parity with HuggingFace transformers: every LLaVA-1.5 / Llama fixture folder (any size, MHA or GQA,
// any rope_theta or feature layer) must reproduce logits, every hidden state, attention patterns,
// image features and greedy generation within 1e-5 (F32), and the BF16 file within 1e-2.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { loadModelFromDir } from '../../src/models/load';
import type { Model } from '../../src/models/model';
import { fixture, fixtureFolders, maxDiff, pixels, readJson } from './helpers';

const TOL = 1e-5;

before(async () => {
  await initEngine();
});
after(() => shutdownEngine());

function hiddenNames(m: Model): string[] {
  return [...Array.from({ length: m.numLayers }, (_, i) => `lm.blocks.${i}.resid_pre`), 'lm.final_norm'];
}

const folders = fixtureFolders(['llava', 'llama']).filter((d) => {
  const inp = readJson(fixture(d) + '/inputs.json');
  return Array.isArray(inp.input_ids); // padded (G) and attribution (attnp) files have their own tests
});

test('fixture folders are found', () => {
  assert.ok(folders.includes('llava_tiny_A') && folders.includes('llama_tiny_C'), `found ${folders}`);
});

for (const name of folders) {
  describe(name, () => {
    const dir = fixture(name);
    const inp = readJson(dir + '/inputs.json');
    const out = readJson(dir + '/outputs.json');
    let model: Model;
    let px: tf.Tensor | undefined;
    before(() => {
      model = loadModelFromDir(dir);
      px = inp.pixel_values ? pixels(inp.pixel_values) : undefined;
    });
    after(() => {
      model.dispose();
      px?.dispose();
    });

    test('logits, every hidden state, last layer before norm, attention patterns', () => {
      const patterns = Object.keys(out.attentions ?? {}).map((k) => `lm.blocks.${k.split('_')[1]}.attn.pattern`);
      const names = [...hiddenNames(model), ...patterns, 'projector.out'];
      const r = model.forward({ inputIds: inp.input_ids, attentionMask: inp.attention_mask, pixelValues: px }, { cache: names });
      try {
        assert.ok(maxDiff(r.logits!, out.logits) < TOL, `logits ${maxDiff(r.logits!, out.logits)}`);
        hiddenNames(model).forEach((n, i) => {
          const d = maxDiff(r.cache.get(n)!, out.hidden_states[i]);
          assert.ok(d < TOL, `hidden_states[${i}] (${n}) differs by ${d}`);
        });
        assert.ok(maxDiff(r.hidden, out.last_layer_output_before_norm) < TOL);
        for (const [k, v] of Object.entries(out.attentions ?? {})) {
          const d = maxDiff(r.cache.get(`lm.blocks.${k.split('_')[1]}.attn.pattern`)!, v);
          assert.ok(d < TOL, `attention ${k} differs by ${d}`);
        }
        if (out.image_features) assert.ok(maxDiff(r.cache.get('projector.out')!, out.image_features) < TOL);
        assert.deepEqual(r.unusedHooks, []);
      } finally {
        r.dispose();
      }
    });

    if (out.vision?.selected_features)
      test('vision tower: hidden states and selected features', () => {
        const vl = out.vision.hidden_states ? out.vision.hidden_states.length - 1 : 0;
        const names = ['vision.features', 'vision.embed', ...Array.from({ length: vl }, (_, i) => `vision.blocks.${i}.resid_post`)];
        const r = model.forward({ inputIds: inp.input_ids, attentionMask: inp.attention_mask, pixelValues: px }, { cache: names });
        try {
          assert.ok(maxDiff(r.cache.get('vision.features')!, out.vision.selected_features) < TOL);
          assert.ok(maxDiff(r.cache.get('vision.embed')!, out.vision.hidden_states[0]) < TOL);
          // Only the layers LLaVA reads are run; compare those that exist.
          for (let i = 1; i < vl; i++) {
            const t = r.cache.get(`vision.blocks.${i - 1}.resid_post`);
            if (t) assert.ok(maxDiff(t, out.vision.hidden_states[i]) < TOL, `vision hidden ${i}`);
          }
        } finally {
          r.dispose();
        }
      });

    test('greedy generation with a KV cache: tokens and step logits', () => {
      const g = out.generation;
      const row = g.input_row ?? 0;
      const rowPx = px && px.shape[0] > 1 ? px.slice([row], [1]) : px;
      const res = model.generate(
        { inputIds: [inp.input_ids[row]], attentionMask: [inp.attention_mask[row]], pixelValues: rowPx },
        { maxNewTokens: g.max_new_tokens, returnStepLogits: true },
      );
      if (rowPx !== px) rowPx?.dispose();
      assert.deepEqual(res.newTokens[0], g.new_tokens);
      const steps = Float32Array.from(res.stepLogits!.flatMap((s) => [...s[0]]));
      assert.ok(maxDiff(steps, g.step_logits) < TOL, `step logits ${maxDiff(steps, g.step_logits)}`);
    });

    test('BF16 checkpoint within 1e-2 of the F32 reference', () => {
      const bf = loadModelFromDir(dir, { file: 'model-bf16.safetensors' });
      try {
        const r = bf.forward({ inputIds: inp.input_ids, attentionMask: inp.attention_mask, pixelValues: px });
        const d = maxDiff(r.logits!, out.logits);
        r.dispose();
        assert.ok(d < 1e-2 && d > 0, `bf16 logits differ by ${d}`);
      } finally {
        bf.dispose();
      }
    });
  });
}

describe('llava_tiny_A_padded_G: left and right padding, batched left-padded generation', () => {
  const dir = fixture('llava_tiny_A_padded_G');
  const inp = readJson(dir + '/inputs.json');
  const out = readJson(dir + '/outputs.json');
  let model: Model;
  let px: tf.Tensor;
  before(() => {
    model = loadModelFromDir(dir);
    px = pixels(inp.pixel_values);
  });
  after(() => {
    model.dispose();
    px.dispose();
  });
  for (const side of ['left', 'right'] as const)
    test(`${side}-padded logits and hidden states on real tokens`, () => {
      const mask: number[][] = inp[side].attention_mask;
      const r = model.forward({ inputIds: inp[side].input_ids, attentionMask: mask, pixelValues: px }, { cache: hiddenNames(model) });
      try {
        const rows = mask.flat();
        assert.ok(maxDiff(r.logits!, out[side].logits, rows, model.vocabSize) < TOL);
        hiddenNames(model).forEach((n, i) => {
          assert.ok(maxDiff(r.cache.get(n)!, out[side].hidden_states[i], rows, model.dModel) < TOL, `${side} hidden ${i}`);
        });
      } finally {
        r.dispose();
      }
    });
  test('batched generation counts decode positions over real tokens only', () => {
    const res = model.generate(
      { inputIds: inp.left.input_ids, attentionMask: inp.left.attention_mask, pixelValues: px },
      { maxNewTokens: out.generation.max_new_tokens, returnStepLogits: true },
    );
    assert.deepEqual(res.newTokens, out.generation.new_tokens);
    const steps = Float32Array.from(res.stepLogits!.flatMap((s) => s.flatMap((x) => [...x])));
    assert.ok(maxDiff(steps, out.generation.step_logits) < TOL);
  });
  test('right padding is refused for batched generation', () => {
    assert.throws(
      () => model.generate({ inputIds: inp.right.input_ids, attentionMask: inp.right.attention_mask, pixelValues: px }, { maxNewTokens: 1 }),
      /left padding/,
    );
  });
});
