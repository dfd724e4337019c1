// Fuzzed config.json files through model loading (openCheckpoint → config parsing → weight checks →
// loadModelFromDir) over the real HF fixture weights: fields set to wrong types, zero, negative, fractional
// or huge values, removed, or model types swapped. Every case loads a model or fails with a ConfigError,
// CheckpointError or InputError. Allocation bound: a loaded model holds at most twice its checkpoint's bytes
// (a huge declared size is refused by the shape checks before any tensor exists), and disposing it frees
// every tensor.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { CheckpointError, ConfigError, InputError } from '../../src/errors';
import { loadModelFromDir } from '../../src/models/load';
import { FIXTURES } from '../fixtures/paths';
import { FUZZ_RUNS, FUZZ_SEED, FUZZ_TEST_TIMEOUT_MS, fuzzParams, settle } from './fuzz';

const BASES = ['llava_tiny_A', 'llama_tiny_C', 'qwen2vl_tiny_D', 'llava_next_tiny_E'].map((name) => {
  const dir = path.join(FIXTURES, name);
  return { name, dir, config: JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>, bytes: fs.statSync(path.join(dir, 'model.safetensors')).size };
});
/** Fields the loaders read (top level, text_config / the top level for Llama and Qwen2-VL, vision_config). */
const FIELDS = [
  'model_type', 'image_token_index', 'image_token_id', 'vision_feature_layer', 'vision_feature_select_strategy', 'projector_hidden_act', 'image_grid_pinpoints',
  'vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'head_dim',
  'rms_norm_eps', 'rope_theta', 'rope_scaling', 'hidden_act', 'tie_word_embeddings', 'attention_bias',
  'image_size', 'patch_size', 'num_channels', 'layer_norm_eps', 'spatial_merge_size', 'temporal_patch_size', 'embed_dim', 'depth', 'num_heads', 'mlp_ratio', 'in_chans',
];
const SECTIONS = ['', 'text_config', 'vision_config'];
const value = fc.oneof(
  fc.constantFrom(0, -1, 1, 2, 3, 7, 0.5, 1e9, 2 ** 31, 2 ** 53, 1e308, Number.MAX_SAFE_INTEGER, null, true, '', '64', 'llama', 'qwen2', 'clip_vision_model', 'siglip_vision_model', 'llava', 'qwen2_vl', 'llava_next', 'mistral', 'gelu', 'full'),
  fc.constantFrom<unknown>([], [1, 2], [[336, 672]], { type: 'linear', factor: 2 }, { type: 'mrope', mrope_section: [2, 3, 3] }, { mrope_section: [1e9] }, {}),
  fc.integer({ min: -4, max: 300 }),
  fc.jsonValue({ maxDepth: 1 }),
);
const mutation = fc.record({ section: fc.constantFrom(...SECTIONS), field: fc.constantFrom(...FIELDS), op: fc.constantFrom('set', 'set', 'set', 'delete'), value });
const caseArb = fc.record({ base: fc.nat(BASES.length - 1), mutations: fc.array(mutation, { minLength: 1, maxLength: 3 }), sectionNotObject: fc.oneof({ weight: 19, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom('text_config', 'vision_config') }) });

let tmp: string;
before(async () => {
  // wasm, one thread: loading is what is fuzzed, not compute (and the cpu backend prints a banner on first use).
  await initEngine({ backend: 'wasm', threads: 1, native: 'off' });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-fuzz-config-'));
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  shutdownEngine();
});

test(`config.json: ${FUZZ_RUNS} fuzzed configs load a model or fail with a typed error`, { timeout: FUZZ_TEST_TIMEOUT_MS }, (t) => {
  let loaded = 0;
  const baseTensors = tf.memory().numTensors;
  const dirs = BASES.map((b) => {
    const d = path.join(tmp, b.name);
    fs.mkdirSync(d);
    fs.symlinkSync(path.join(b.dir, 'model.safetensors'), path.join(d, 'model.safetensors'));
    return d;
  });
  fc.assert(
    fc.property(caseArb, (c) => {
      const base = BASES[c.base];
      const cfg = JSON.parse(JSON.stringify(base.config)) as Record<string, unknown>;
      for (const m of c.mutations) {
        const target = (m.section ? cfg[m.section] : cfg) as Record<string, unknown> | undefined;
        if (!target || typeof target !== 'object') continue;
        if (m.op === 'delete') delete target[m.field];
        else target[m.field] = m.value;
      }
      if (c.sectionNotObject) cfg[c.sectionNotObject] = 5;
      fs.writeFileSync(path.join(dirs[c.base], 'config.json'), JSON.stringify(cfg));
      const bytesBefore = tf.memory().numBytes;
      const r = settle(() => loadModelFromDir(dirs[c.base]), [ConfigError, CheckpointError, InputError], `${base.name} with ${JSON.stringify(c.mutations)}`);
      if ('value' in r) {
        loaded++;
        const held = tf.memory().numBytes - bytesBefore;
        assert.ok(held <= 2 * base.bytes, `${base.name}: the model holds ${held} bytes for a ${base.bytes}-byte checkpoint`);
        r.value.dispose();
      }
      assert.equal(tf.memory().numTensors, baseTensors, 'no tensors left behind, loaded or refused');
    }),
    fuzzParams(),
  );
  assert.ok(loaded > 0 && loaded < FUZZ_RUNS, `loaded ${loaded} of ${FUZZ_RUNS}: the generator must reach both outcomes`);
  t.diagnostic(`${FUZZ_RUNS} cases (seed ${FUZZ_SEED}): ${loaded} models loaded, ${FUZZ_RUNS - loaded} configs refused with a typed error`);
});
