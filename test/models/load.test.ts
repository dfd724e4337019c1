// Loading errors surface as one clear error each: config/weights mismatch, unsupported model_type,
// bad config values, pickle-only folders. Nothing half-loaded stays in memory.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { CheckpointError, ConfigError } from '../../src/errors';
import { loadModelFromDir, supportedModelTypes } from '../../src/models/load';
import { fixture, readJson } from './helpers';

let tmp: string;
before(async () => {
  await initEngine();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-load-'));
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  shutdownEngine();
});

/** A copy of fixture A with an edited config.json. */
function withConfig(name: string, edit: (c: Record<string, any>) => void): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  fs.copyFileSync(fixture('llava_tiny_A') + '/model.safetensors', dir + '/model.safetensors');
  const cfg = readJson(fixture('llava_tiny_A') + '/config.json');
  edit(cfg);
  fs.writeFileSync(dir + '/config.json', JSON.stringify(cfg));
  return dir;
}

test('config/weights mismatch lists the offending tensors in one CheckpointError', () => {
  const dir = withConfig('wrong-size', (c) => (c.text_config.intermediate_size = 96));
  const before = tf.memory().numTensors;
  assert.throws(() => loadModelFromDir(dir), (e: Error) => {
    assert.ok(e instanceof CheckpointError);
    assert.match(e.message, /mlp\.gate_proj\.weight has shape \[128,64\] but the config implies \[96,64\]/);
    return true;
  });
  assert.equal(tf.memory().numTensors, before);
});

test('more layers in the config than in the file: missing tensors are named', () => {
  const dir = withConfig('more-layers', (c) => (c.text_config.num_hidden_layers = 5));
  assert.throws(() => loadModelFromDir(dir), /missing tensor language_model\.model\.layers\.4\./);
});

test('unsupported model_type names the supported ones', () => {
  const dir = withConfig('unknown-type', (c) => (c.model_type = 'blip_2'));
  assert.throws(() => loadModelFromDir(dir), (e: Error) => e instanceof ConfigError && /blip_2/.test(e.message) && /llava/.test(e.message));
  assert.ok(supportedModelTypes().includes('llava'));
});

test('invalid config values name the field', () => {
  assert.throws(() => loadModelFromDir(withConfig('bad-heads', (c) => (c.text_config.num_key_value_heads = 3))), /divisible by num_key_value_heads \(3\)/);
  assert.throws(() => loadModelFromDir(withConfig('bad-feature', (c) => (c.vision_feature_layer = -9))), /vision_feature_layer -9/);
  assert.throws(() => loadModelFromDir(withConfig('bad-strategy', (c) => (c.vision_feature_select_strategy = 'cls'))), /strategy "cls"/);
  assert.throws(() => loadModelFromDir(withConfig('bad-rope', (c) => (c.text_config.rope_scaling = { type: 'longrope', factor: 4 }))), /rope_scaling type "longrope"/);
});

test('a pickle-only folder is refused without being read', () => {
  const dir = path.join(tmp, 'pickle');
  fs.mkdirSync(dir);
  fs.copyFileSync(fixture('llava_tiny_A') + '/config.json', dir + '/config.json');
  fs.writeFileSync(dir + '/pytorch_model.bin', 'not really a pickle');
  assert.throws(() => loadModelFromDir(dir), (e: Error) => e instanceof CheckpointError && /pickle/i.test(e.message));
});

test('HF class defaults fill fields save_pretrained omits (llava-hf/llava-1.5-7b-hf text_config)', async () => {
  const { parseLlavaConfig } = await import('../../src/models/llava/model');
  const cfg = parseLlavaConfig({
    model_type: 'llava',
    image_token_index: 32000,
    text_config: { model_type: 'llama', rms_norm_eps: 1e-5, vocab_size: 32064, max_position_embeddings: 4096 },
    vision_config: { hidden_size: 1024, image_size: 336, intermediate_size: 4096, model_type: 'clip_vision_model', num_attention_heads: 16, num_hidden_layers: 24, patch_size: 14 },
  });
  assert.equal(cfg.text.hiddenSize, 4096);
  assert.equal(cfg.text.numLayers, 32);
  assert.equal(cfg.text.numKvHeads, 32);
  assert.equal(cfg.text.vocabSize, 32064);
  assert.equal(cfg.text.rmsNormEps, 1e-5);
  assert.equal(cfg.vision.layerNormEps, 1e-5);
  assert.equal(cfg.featureLayers[0], -2);
});

test('resume (a run restarted from a layer with a key/value prefix) is offered only where it is exact', async () => {
  const { InputError } = await import('../../src/errors');
  const { FIXTURES2 } = await import('../fixtures/paths');
  const cases = [
    [fixture('llava_tiny_A'), true],
    [fixture('llama_tiny_C'), true],
    [fixture('qwen2vl_tiny_D'), false],
    [path.join(FIXTURES2, 'mllama_tiny_H'), false],
  ] as const;
  for (const [dir, expected] of cases) {
    const model = loadModelFromDir(dir);
    const resid = tf.zeros([1, 1, model.dModel]);
    try {
      assert.equal(model.canResume, expected, dir);
      if (!expected)
        assert.throws(
          () => model.resume({ embeds: resid, positions: [Int32Array.of(0)], keyMask: [[1]], ctx: undefined as never }),
          (e: unknown) => e instanceof InputError && /cannot resume a run from a layer: its (positions are three M-RoPE streams|images enter through cross-attention)/.test(e.message),
          dir,
        );
    } finally {
      resid.dispose();
      model.dispose();
    }
  }
});
