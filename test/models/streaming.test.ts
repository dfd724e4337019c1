// Memory budget and layer-by-layer weight streaming: a checkpoint over a small budget loads through the
// streaming path and gives the resident path's numbers (bit-identical: same values, same kernels), hooks
// and generation included; what cannot fit is refused before anything is read; device memory returns to
// its baseline.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { CheckpointError, ConfigError, InputError } from '../../src/errors';
import { openCheckpoint } from '../../src/io/checkpoint';
import { CausalLM } from '../../src/models/causal-lm';
import { loadModelFromDir, checkpointSource } from '../../src/models/load';
import type { Model, ModelInputs } from '../../src/models/model';
import { activationBytes, planMemory, resolveBudget, type MemoryPlan, type TensorInfo, type TextDims } from '../../src/models/memory-plan';
import { fixture, maxDiff, pixels, readJson } from './helpers';
import { parseEngineConfig, setEngineConfig } from '../../src/engine/config';

before(async () => {
  await initEngine();
});
after(() => shutdownEngine());

const A = fixture('llava_tiny_A');
const aIn = readJson(path.join(A, 'inputs.json'));
const aOut = readJson(path.join(A, 'outputs.json'));

/** Logits, every residual, a pattern and generation of a model, as plain arrays. */
function run(m: Model, inputs: ModelInputs) {
  const names = ['lm.embed', 'lm.blocks.1.attn.pattern', 'lm.blocks.2.mlp_out', 'lm.final_norm'];
  const r = m.forward(inputs, { cache: names });
  const res = { logits: r.logits!.dataSync().slice() as Float32Array, cache: names.map((n) => r.cache.get(n)!.dataSync().slice() as Float32Array) };
  r.dispose();
  const one = inputs.pixelValues?.slice([0], [1]);
  const g = m.generate({ ...inputs, inputIds: [inputs.inputIds[0]], attentionMask: undefined, pixelValues: one }, { maxNewTokens: 4, returnStepLogits: true, eosTokenId: null });
  one?.dispose();
  return { ...res, tokens: g.newTokens[0], steps: Float32Array.from(g.stepLogits!.flatMap((s) => [...s[0]])) };
}

function identical(a: ReturnType<typeof run>, b: ReturnType<typeof run>, label: string): void {
  assert.equal(maxDiff(a.logits, b.logits), 0, `${label}: logits`);
  a.cache.forEach((x, i) => assert.equal(maxDiff(x, b.cache[i]), 0, `${label}: cached value ${i}`));
  assert.deepEqual(a.tokens, b.tokens);
  assert.equal(maxDiff(a.steps, b.steps), 0, `${label}: step logits`);
}

test('fixture A over a 1 MB budget streams layer by layer and gives the resident numbers bit for bit', () => {
  const baseline = tf.memory().numTensors;
  const pv = pixels(aIn.pixel_values);
  const inputs = { inputIds: aIn.input_ids, attentionMask: aIn.attention_mask, pixelValues: pv };
  const resident = loadModelFromDir(A);
  assert.equal(resident.decoder.w.memory!.stream, false);
  const ref = run(resident, inputs);
  resident.dispose();
  // 874 KiB of F32 weights plus activations do not fit 1 MB; the vision tower, one layer and activations do.
  const streamed = loadModelFromDir(A, { memoryBudget: '1MB', plannedTokens: 32 });
  const plan = streamed.decoder.w.memory!;
  assert.equal(plan.stream, true);
  assert.ok(plan.unitBytes < plan.budgetBytes && plan.residentBytes < plan.budgetBytes);
  assert.equal(streamed.decoder.w.layers.streaming, true);
  assert.equal(streamed.decoder.w.embed, null);
  // While idle, only the resident part is on the device: no layer tensors stay uploaded.
  const idle = tf.memory().numTensors - baseline - 1; // minus the pixel tensor
  const s = run(streamed, inputs);
  assert.equal(tf.memory().numTensors - baseline - 1, idle);
  identical(ref, s, 'streamed');
  assert.ok(maxDiff(s.logits, aOut.logits) <= 1e-5);
  streamed.dispose();
  pv.dispose();
  assert.equal(tf.memory().numTensors, baseline);
});

test('BF16 weights stream in stored precision and equal the resident BF16 model bit for bit', () => {
  const pv = pixels(aIn.pixel_values);
  const inputs = { inputIds: aIn.input_ids, attentionMask: aIn.attention_mask, pixelValues: pv };
  const r = loadModelFromDir(A, { file: 'model-bf16.safetensors' });
  const ref = run(r, inputs);
  r.dispose();
  const s = loadModelFromDir(A, { file: 'model-bf16.safetensors', streaming: 'always' });
  assert.equal(s.decoder.w.embedHost!.dtype, 'BF16'); // kept compact on the host
  identical(ref, run(s, inputs), 'bf16');
  s.dispose();
  pv.dispose();
});

test('LLaVA-NeXT (E) and Qwen2-VL (D, vision blocks streamed too) stream with identical results', () => {
  const E = fixture('llava_next_tiny_E');
  const eIn = readJson(path.join(E, 'inputs.json'));
  const D = fixture('qwen2vl_tiny_D');
  const dIn = readJson(path.join(D, 'inputs.json'));
  const cases: [string, (pv: tf.Tensor) => ModelInputs, tf.Tensor][] = [
    [E, (pv) => ({ inputIds: eIn.input_ids, pixelValues: pv, imageSizes: eIn.image_sizes }), pixels(eIn.pixel_values)],
    [D, (pv) => ({ inputIds: dIn.input_ids, pixelValues: pv, imageGridThw: dIn.image_grid_thw }), pixels(dIn.pixel_values)],
  ];
  for (const [dir, mk, pv] of cases) {
    const a = loadModelFromDir(dir);
    const b = loadModelFromDir(dir, { streaming: 'always' });
    const ra = a.forward(mk(pv), { cache: ['projector.out', 'lm.blocks.3.resid_post'] });
    const rb = b.forward(mk(pv), { cache: ['projector.out', 'lm.blocks.3.resid_post'] });
    assert.equal(maxDiff(ra.logits!, rb.logits!.dataSync() as Float32Array), 0, dir);
    assert.equal(maxDiff(ra.cache.get('projector.out')!, rb.cache.get('projector.out')!.dataSync() as Float32Array), 0, dir);
    [ra, rb].forEach((r) => r.dispose());
    if (dir === D) assert.equal(b.decoder.w.memory!.summary.startsWith('streaming: 6 units'), true); // 4 layers + 2 vision blocks
    a.dispose();
    b.dispose();
    pv.dispose();
  }
});

test('a head split into vocabulary chunks gives the same logits and logit lens', () => {
  const C = fixture('llama_tiny_C');
  const cIn = readJson(path.join(C, 'inputs.json'));
  const ckpt = openCheckpoint(C);
  const resident = CausalLM.load(checkpointSource(ckpt), ckpt.config);
  const dims: TextDims = { vocab: 300, hidden: 64, intermediate: 128, heads: 4, kvHeads: 2, headDim: 16, layers: 4 };
  // A unit of 100 columns of the head: the 300-token vocabulary comes in 3 chunks.
  const plan: MemoryPlan = { budgetBytes: 1e9, stream: true, residentBytes: 0, unitBytes: 4 * 64 * 100, hostBytes: 0, plannedTokens: 16, dims, summary: 'test' };
  const chunked = CausalLM.load(checkpointSource(ckpt, plan), ckpt.config);
  ckpt.close();
  assert.equal(chunked.decoder.w.head.size, 3);
  const ra = resident.forward({ inputIds: cIn.input_ids, attentionMask: cIn.attention_mask });
  const rb = chunked.forward({ inputIds: cIn.input_ids, attentionMask: cIn.attention_mask });
  assert.ok(maxDiff(ra.logits!, rb.logits!.dataSync() as Float32Array) <= 1e-6);
  const lens = tf.tidy(() => maxDiff(resident.decoder.unembed(ra.hidden), chunked.decoder.unembed(rb.hidden).dataSync() as Float32Array));
  assert.ok(lens <= 1e-6);
  [ra, rb].forEach((r) => r.dispose());
  resident.dispose();
  chunked.dispose();
});

test('gradients flow through a streamed forward (weights freed after each layer)', () => {
  const C = fixture('llama_tiny_C');
  const cIn = readJson(path.join(C, 'inputs.json'));
  const grads = ['never', 'always'].map((mode) => {
    const m = loadModelFromDir(C, { streaming: mode as 'never' | 'always' });
    const g = tf.tidy(() => {
      const embeds = m.decoder.embed([cIn.input_ids[0]]);
      const f = (x: tf.Tensor) =>
        m.forward({ inputIds: [cIn.input_ids[0]] }, { startLayer: 0, startResid: x }).logits!.slice([0, 3, 7], [1, 1, 1]).sum() as tf.Scalar;
      return tf.grad(f)(embeds).dataSync().slice() as Float32Array;
    });
    m.dispose();
    return g;
  });
  assert.ok(grads[0].some((x) => x !== 0));
  assert.ok(maxDiff(grads[0], grads[1]) <= 1e-7);
});

test('too small a budget is refused before loading, naming the sizes and the fix', () => {
  const before = tf.memory().numTensors;
  // One layer of A alone is 144.5 KiB in float32: 100 kB cannot hold it.
  assert.throws(
    () => loadModelFromDir(A, { memoryBudget: '100kB', plannedTokens: 32 }),
    (e: Error) => e instanceof CheckpointError && /even streamed layer by layer/.test(e.message) && /largest layer 144\.5 KiB/.test(e.message) && /HOPSCOPE_MEMORY_BUDGET/.test(e.message),
  );
  assert.throws(() => loadModelFromDir(A, { memoryBudget: '1MB', streaming: 'never', plannedTokens: 32 }), (e: Error) => e instanceof CheckpointError && /resident/.test(e.message));
  assert.equal(tf.memory().numTensors, before);
});

test('the budget comes from the option, then HOPSCOPE_MEMORY_BUDGET, then the backend', () => {
  // The variable is read when the engine configuration is parsed (initEngine does it; here directly).
  const old = process.env.HOPSCOPE_MEMORY_BUDGET;
  const restart = () => setEngineConfig(parseEngineConfig());
  try {
    process.env.HOPSCOPE_MEMORY_BUDGET = '1MB';
    restart();
    assert.equal(resolveBudget(undefined, 'wasm'), 1e6);
    assert.equal(resolveBudget('2KiB', 'wasm'), 2048);
    const m = loadModelFromDir(A, { plannedTokens: 32 });
    assert.equal(m.decoder.w.memory!.stream, true);
    m.dispose();
    delete process.env.HOPSCOPE_MEMORY_BUDGET;
    restart();
    assert.equal(resolveBudget(undefined, 'wasm'), 3.5 * 2 ** 30);
    process.env.HOPSCOPE_MEMORY_BUDGET = 'lots';
    assert.throws(() => restart(), (e: Error) => e instanceof ConfigError && /HOPSCOPE_MEMORY_BUDGET/.test(e.message));
  } finally {
    if (old === undefined) delete process.env.HOPSCOPE_MEMORY_BUDGET;
    else process.env.HOPSCOPE_MEMORY_BUDGET = old;
    restart();
  }
});

test('a prompt too long for the budget is an InputError before the forward runs', () => {
  const m = loadModelFromDir(A, { memoryBudget: '1MB', plannedTokens: 32 });
  const long = [new Array(400).fill(5)];
  assert.throws(() => m.forward({ inputIds: long }), (e: Error) => e instanceof InputError && /400 tokens/.test(e.message));
  m.dispose();
});

// ---------------------------------------------------------------------------------------------
// Plans for real sizes (no weights involved)

/** Tensor list of a LLaVA-1.5-7B-shaped checkpoint (CLIP ViT-L/336 + Vicuna-7B) in the given bytes per value. */
function llava7b(bytesPer: number): TensorInfo[] {
  const t: TensorInfo[] = [];
  const add = (name: string, shape: number[]) => t.push({ name, shape, bytes: shape.reduce((a, b) => a * b, 1) * bytesPer });
  add('vision_tower.vision_model.all', [303_500_000]);
  add('multi_modal_projector.linear_1.weight', [4096, 1024]);
  add('multi_modal_projector.linear_2.weight', [4096, 4096]);
  add('language_model.model.embed_tokens.weight', [32064, 4096]);
  add('language_model.lm_head.weight', [32064, 4096]);
  for (let i = 0; i < 32; i++) {
    for (const n of ['q', 'k', 'v', 'o']) add(`language_model.model.layers.${i}.self_attn.${n}_proj.weight`, [4096, 4096]);
    for (const n of ['gate', 'up']) add(`language_model.model.layers.${i}.mlp.${n}_proj.weight`, [11008, 4096]);
    add(`language_model.model.layers.${i}.mlp.down_proj.weight`, [4096, 11008]);
  }
  return t;
}
const DIMS_7B: TextDims = { vocab: 32064, hidden: 4096, intermediate: 11008, heads: 32, kvHeads: 32, headDim: 128, layers: 32 };
const GiB = 2 ** 30;

test('plans: a BF16 7B LLaVA streams inside the wasm heap; F32 7B is refused for host RAM; a 1 GB budget is refused', () => {
  const host = { hostTotalBytes: 24 * GiB, hostFreeBytes: 22 * GiB, deviceIsHost: true };
  const p = planMemory(llava7b(2), { budgetBytes: 3.5 * GiB, dims: DIMS_7B, ...host, plannedTokens: 700 });
  assert.equal(p.stream, true);
  assert.ok(p.unitBytes > 0.75 * GiB && p.unitBytes < 0.8 * GiB, `layer ${p.unitBytes}`); // 202M params in F32
  assert.ok(p.hostBytes > 12 * GiB && p.hostBytes < 14 * GiB);
  assert.throws(
    () => planMemory(llava7b(4), { budgetBytes: 3.5 * GiB, dims: DIMS_7B, ...host, plannedTokens: 700 }),
    (e: Error) => e instanceof CheckpointError && /host RAM/.test(e.message) && /BF16/.test(e.message),
  );
  assert.throws(
    () => planMemory(llava7b(2), { budgetBytes: 1 * GiB, dims: DIMS_7B, ...host }),
    (e: Error) => e instanceof CheckpointError && /largest layer/.test(e.message),
  );
  // A GPU with room for everything keeps it resident; host RAM then only needs to pass the weights through.
  const gpu = planMemory(llava7b(2), { budgetBytes: 70 * GiB, dims: DIMS_7B, hostTotalBytes: 24 * GiB, hostFreeBytes: 20 * GiB, deviceIsHost: false });
  assert.equal(gpu.stream, false);
  // Streaming keeps one layer's activations; resident keeps all layers' (the forward is one tidy).
  assert.ok(activationBytes(DIMS_7B, 1, 600, 600, true) * 10 < activationBytes(DIMS_7B, 1, 600, 600, false));
});
