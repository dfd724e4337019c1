// Qwen2-VL: parity with HF on fixture D using position ids hopscope computes itself (vision tower, merger,
// M-RoPE decoder, generation), the same from the processor's own patches, and checks that nothing is tuned
// to D: hand-worked get_rope_index cases, other mrope sections, padded rows, batched left-padded generation,
// decode steps vs a full forward, two images in one row vs one per row.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { ConfigError, InputError } from '../../src/errors';
import type { ChwImage } from '../../src/io/image';
import { batchQwen2VL, qwen2vlPatchify, qwenImageLayout } from '../../src/io/processors';
import { loadModelFromDir } from '../../src/models/load';
import { Qwen2VLModel } from '../../src/models/qwen2-vl/model';
import { qwen2VLRopeIndex } from '../../src/models/qwen2-vl/rope-index';
import { fixture, flat, maxDiff, readJson } from './helpers';

const DIR = fixture('qwen2vl_tiny_D');
const inp = readJson(path.join(DIR, 'inputs.json'));
const out = readJson(path.join(DIR, 'outputs.json'));
const TOL = 1e-5;
const [VS, VE, IMG, VID] = [295, 296, 297, 298];
const TOK = { imageTokenId: IMG, videoTokenId: VID, visionStartTokenId: VS, spatialMergeSize: 2 };

let model: Qwen2VLModel;
let pv: tf.Tensor;
let tmp: string;
before(async () => {
  await initEngine();
  model = loadModelFromDir(DIR) as Qwen2VLModel;
  pv = tf.tensor2d(flat(inp.pixel_values), [48, 96]);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-qwen2vl-'));
});
after(() => {
  model.dispose();
  pv.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
  shutdownEngine();
});

const grids = inp.image_grid_thw as [number, number, number][];
const patchesOf = (k: number) => grids[k][0] * grids[k][1] * grids[k][2];

test('D: M-RoPE position ids and rope_deltas computed by hopscope equal HF get_rope_index', () => {
  const r = model.ropeIndex({ inputIds: inp.input_ids, attentionMask: inp.attention_mask, imageGridThw: grids });
  assert.deepEqual(r.positions.map((s) => s.map((row) => [...row])), inp.position_ids);
  assert.deepEqual(r.ropeDeltas, inp.rope_deltas.map((d: number[]) => d[0]));
});

test('D: vision tower (patch embedding, every block), merger, logits, hidden states, attention match HF', () => {
  const names = ['vision.embed', 'vision.blocks.0.resid_post', 'vision.blocks.1.resid_post', 'projector.out', 'lm.final_norm', 'lm.blocks.0.attn.pattern', 'lm.blocks.3.attn.pattern'];
  for (let i = 0; i < 4; i++) names.push(`lm.blocks.${i}.resid_pre`);
  // No positionIds given: hopscope computes them.
  const r = model.forward({ inputIds: inp.input_ids, attentionMask: inp.attention_mask, pixelValues: pv, imageGridThw: grids }, { cache: names });
  try {
    assert.ok(maxDiff(r.cache.get('vision.embed')!, out.vision.patch_embed_output) <= TOL);
    assert.ok(maxDiff(r.cache.get('vision.blocks.0.resid_post')!, out.vision.block_outputs[0]) <= TOL);
    assert.ok(maxDiff(r.cache.get('vision.blocks.1.resid_post')!, out.vision.block_outputs[1]) <= TOL);
    assert.ok(maxDiff(r.cache.get('projector.out')!, out.image_embeds) <= TOL);
    assert.ok(maxDiff(r.logits!, out.logits) <= TOL);
    for (let i = 0; i < 4; i++) assert.ok(maxDiff(r.cache.get(`lm.blocks.${i}.resid_pre`)!, out.hidden_states[i]) <= TOL, `hidden ${i}`);
    assert.ok(maxDiff(r.cache.get('lm.final_norm')!, out.hidden_states[4]) <= TOL);
    assert.ok(maxDiff(r.hidden, out.last_layer_output_before_norm) <= TOL);
    assert.ok(maxDiff(r.cache.get('lm.blocks.0.attn.pattern')!, out.attentions.layer_0) <= TOL);
    assert.ok(maxDiff(r.cache.get('lm.blocks.3.attn.pattern')!, out.attentions.layer_3) <= TOL);
  } finally {
    r.dispose();
  }
});

test('D: explicit [3][B][T] position ids give the same logits; plain 2-D ids reproduce HF\'s second-call output', () => {
  const r = model.forward({ inputIds: inp.input_ids, pixelValues: pv, imageGridThw: grids, positionIds: inp.position_ids });
  assert.ok(maxDiff(r.logits!, out.logits) <= TOL);
  r.dispose();
  // transformers 4.45 reuses cached rope_deltas and falls back to arange positions when a second forward gets
  // no position_ids: that is the fixture's logits_without_position_ids.
  const ar = inp.input_ids.map((row: number[]) => row.map((_, i) => i));
  const q = model.forward({ inputIds: inp.input_ids, pixelValues: pv, imageGridThw: grids, positionIds: ar });
  assert.ok(maxDiff(q.logits!, out.logits_without_position_ids) <= TOL);
  q.dispose();
});

test('D: greedy generation (tokens and step logits) matches HF', () => {
  const one = pv.slice([0, 0], [patchesOf(0), 96]);
  const g = model.generate({ inputIds: [inp.input_ids[0]], pixelValues: one, imageGridThw: [grids[0]] }, { maxNewTokens: 5, returnStepLogits: true });
  one.dispose();
  assert.deepEqual(g.newTokens[0], out.generation.new_tokens);
  assert.ok(maxDiff(Float32Array.from(g.stepLogits!.flatMap((s) => [...s[0]])), out.generation.step_logits) <= TOL);
});

test('D from the images through hopscope\'s patchify gives HF logits', () => {
  const items = (inp.images_chw as number[][][][]).map((im) => {
    const chw: ChwImage = { channels: im.length, height: im[0].length, width: im[0][0].length, data: flat(im) };
    return qwen2vlPatchify([chw], { patchSize: 4, temporalPatchSize: 2, mergeSize: 2 });
  });
  const b = batchQwen2VL(items);
  const x = tf.tensor2d(b.pixelValues, b.shape);
  const r = model.forward({ inputIds: inp.input_ids, pixelValues: x, imageGridThw: b.imageGridThw });
  assert.ok(maxDiff(r.logits!, out.logits) <= TOL);
  r.dispose();
  x.dispose();
  const spans = model.imageSpans(inp.input_ids, b.imageGridThw);
  assert.deepEqual(spans.map((s) => [s.row, s.start, s.length]), [[0, 4, 6], [1, 6, 6]]);
  assert.deepEqual(spans[0].layout, qwenImageLayout(grids[0], 2));
});

test('D BF16 checkpoint: a smoke test within 1e-2 of the F32 reference', () => {
  const m = loadModelFromDir(DIR, { file: 'model-bf16.safetensors' });
  const r = m.forward({ inputIds: inp.input_ids, pixelValues: pv, imageGridThw: grids });
  const d = maxDiff(r.logits!, out.logits);
  assert.ok(d > 0 && d < 1e-2, `bf16 diff ${d}`);
  r.dispose();
  m.dispose();
});

// ---------------------------------------------------------------------------------------------
// get_rope_index worked by hand

test('rope index: two images in a row, text restarts at max + 1, padding skipped and set to 1', () => {
  // [pad, a, VS, 4 image tokens (grid 1x4x4 → 2x2), VE, b, VS, 2 image tokens (grid 1x2x4 → 1x2), VE, c]
  const ids = [[0, 7, VS, IMG, IMG, IMG, IMG, VE, 8, VS, IMG, IMG, VE, 9]];
  const mask = [[0, ...new Array(13).fill(1)]];
  const r = qwen2VLRopeIndex(ids, mask, [[1, 4, 4], [1, 2, 4]], TOK);
  const [t, h, w] = r.positions.map((s) => [...s[0]]);
  // text 7,VS at 0,1; image 1 starts at 2: t=2, h=2+{0,0,1,1}, w=2+{0,1,0,1}; VE at max(2,3,3)+1 = 4; 8,VS 5,6;
  // image 2 at 7: t=7, h=7, w=7+{0,1}; VE at 9, c at 10. The pad keeps 1.
  assert.deepEqual(t, [1, 0, 1, 2, 2, 2, 2, 4, 5, 6, 7, 7, 9, 10]);
  assert.deepEqual(h, [1, 0, 1, 2, 2, 3, 3, 4, 5, 6, 7, 7, 9, 10]);
  assert.deepEqual(w, [1, 0, 1, 2, 3, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(r.ropeDeltas, [10 + 1 - 14]); // HF: max + 1 - row length (pads included)
  assert.deepEqual(r.decodeDelta, [10 + 1 - 13]); // counted from real tokens
  // Text only (no grids): cumsum(mask) - 1 on every stream.
  const txt = qwen2VLRopeIndex([[0, 0, 5, 6, 7]], [[0, 0, 1, 1, 1]], undefined, TOK);
  assert.deepEqual([...txt.positions[1][0]], [1, 1, 0, 1, 2]);
  assert.deepEqual(txt.ropeDeltas, [-2]);
  // Videos are refused by name; image tokens without a grid too.
  assert.throws(() => qwen2VLRopeIndex([[VS, VID, VID]], undefined, [[1, 2, 2]], TOK), (e: Error) => e instanceof InputError && /video/.test(e.message));
  assert.throws(() => model.forward({ inputIds: [[VS, IMG, VE]] }), (e: Error) => e instanceof InputError && /imageGridThw/.test(e.message));
});

// ---------------------------------------------------------------------------------------------
// Internal consistency, also under other mrope sections

function withConfig(name: string, edit: (c: Record<string, any>) => void): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  fs.symlinkSync(path.join(DIR, 'model.safetensors'), path.join(dir, 'model.safetensors'));
  const cfg = readJson(path.join(DIR, 'config.json'));
  edit(cfg);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  return dir;
}

function consistency(m: Qwen2VLModel, label: string, full = true): void {
  // Decode steps (positions from rope_deltas) equal a full forward over prompt + generated tokens.
  const one = pv.slice([0, 0], [patchesOf(0), 96]);
  const g = m.generate({ inputIds: [inp.input_ids[0]], pixelValues: one, imageGridThw: [grids[0]] }, { maxNewTokens: 3, returnStepLogits: true, eosTokenId: null });
  const ext = [[...inp.input_ids[0], ...g.newTokens[0].slice(0, 2)]];
  const r = m.forward({ inputIds: ext, pixelValues: one, imageGridThw: [grids[0]] });
  const L = r.logits!.arraySync() as number[][][];
  r.dispose();
  const T = inp.input_ids[0].length;
  for (let s = 0; s < 3; s++) assert.ok(maxDiff(g.stepLogits![s][0], Float32Array.from(L[0][T - 1 + s])) <= TOL, `${label}: step ${s}`);
  // Left- and right-padded rows give the unpadded logits on real tokens.
  const ref = m.forward({ inputIds: inp.input_ids, pixelValues: pv, imageGridThw: grids });
  const refL = ref.logits!.arraySync() as number[][][];
  ref.dispose();
  for (const left of full ? [true, false] : [true]) {
    const ids = inp.input_ids.map((row: number[], b: number) => (left ? [...new Array(2 + b).fill(0), ...row, ...new Array(1 - b).fill(0)] : [...row, 0, 0, 0]));
    const mask = ids.map((row: number[], b: number) => {
      const lead = left ? 2 + b : 0;
      return row.map((_: number, t: number) => (t >= lead && t < lead + inp.input_ids[b].length ? 1 : 0));
    });
    const p = m.forward({ inputIds: ids, attentionMask: mask, pixelValues: pv, imageGridThw: grids });
    const P = p.logits!.arraySync() as number[][][];
    p.dispose();
    for (let b = 0; b < 2; b++) {
      const lead = left ? 2 + b : 0;
      const got = P[b].slice(lead, lead + inp.input_ids[b].length);
      assert.ok(maxDiff(Float32Array.from(got.flat()), Float32Array.from(refL[b].flat())) <= TOL, `${label}: ${left ? 'left' : 'right'} padding row ${b}`);
    }
  }
  if (!full) return one.dispose();
  // Batched left-padded generation equals one row at a time.
  const rowB: number[] = inp.input_ids[1];
  const short: number[] = inp.input_ids[0].slice(2); // a shorter prompt, so row 0 is left-padded
  const padIds = [[0, 0, ...short], rowB];
  const padMask = [[0, 0, ...short.map(() => 1)], rowB.map(() => 1)];
  const gb = m.generate({ inputIds: padIds, attentionMask: padMask, pixelValues: pv, imageGridThw: grids }, { maxNewTokens: 3, returnStepLogits: true, eosTokenId: null });
  for (let b = 0; b < 2; b++) {
    const x = b === 0 ? one : pv.slice([patchesOf(0), 0], [patchesOf(1), 96]);
    const gi = m.generate({ inputIds: [b === 0 ? short : rowB], pixelValues: x, imageGridThw: [grids[b]] }, { maxNewTokens: 3, returnStepLogits: true, eosTokenId: null });
    if (b === 1) x.dispose();
    assert.deepEqual(gb.newTokens[b], gi.newTokens[0], `${label}: batched tokens row ${b}`);
    for (let s = 0; s < 3; s++) assert.ok(maxDiff(gb.stepLogits![s][b], gi.stepLogits![s][0]) <= TOL, `${label}: batched step ${s} row ${b}`);
  }
  one.dispose();
}

test('consistency on D: decode steps vs full forward, padded rows, batched left-padded generation', () => {
  consistency(model, 'D');
});

test('other mrope sections: the sections are used, and every consistency check still holds', () => {
  for (const sec of [[4, 2, 2], [1, 1, 6]]) {
    const m = loadModelFromDir(withConfig(`mrope-${sec.join('-')}`, (c) => (c.rope_scaling.mrope_section = sec))) as Qwen2VLModel;
    try {
      const r = m.forward({ inputIds: inp.input_ids, pixelValues: pv, imageGridThw: grids });
      const d = maxDiff(r.logits!, out.logits);
      r.dispose();
      assert.ok(d > 1e-6, `mrope_section ${sec} should change the logits (diff ${d})`);
      consistency(m, `mrope ${sec}`, sec[0] === 4);
    } finally {
      m.dispose();
    }
  }
  assert.throws(() => loadModelFromDir(withConfig('mrope-bad', (c) => (c.rope_scaling.mrope_section = [2, 2, 2]))), (e: Error) => e instanceof ConfigError && /mrope_section/.test(e.message));
});

test('two images in one row: each image\'s merged tokens equal those of the image alone (attention stays per image)', () => {
  const ids = [[5, VS, ...new Array(6).fill(IMG), VE, 6, VS, ...new Array(6).fill(IMG), VE, 7]];
  const r = model.forward({ inputIds: ids, pixelValues: pv, imageGridThw: grids }, { cache: ['projector.out'] });
  const both = r.cache.get('projector.out')!.arraySync() as number[][];
  r.dispose();
  const spans = model.imageSpans(ids, grids);
  assert.deepEqual(spans.map((s) => [s.image, s.row, s.start]), [[0, 0, 2], [1, 0, 11]]);
  let off = 0;
  for (let k = 0; k < 2; k++) {
    const x = pv.slice([off, 0], [patchesOf(k), 96]);
    const alone = tf.tidy(() => model.encodeImages(x, [grids[k]])).arraySync() as number[][];
    x.dispose();
    assert.ok(maxDiff(Float32Array.from(both.slice(k * 6, k * 6 + 6).flat()), Float32Array.from(alone.flat())) <= 1e-6, `image ${k}`);
    off += patchesOf(k);
  }
});

test('hook points: vision blocks and the merger as projector.out; edits there reach the logits', () => {
  const names = model.hookPoints().map((p) => p.name);
  for (const n of ['vision.embed', 'vision.blocks.1.attn_out', 'vision.features', 'projector.out', 'lm.blocks.3.resid_post']) assert.ok(names.includes(n), n);
  const base = model.forward({ inputIds: inp.input_ids, pixelValues: pv, imageGridThw: grids });
  const ident = model.forward({ inputIds: inp.input_ids, pixelValues: pv, imageGridThw: grids }, { hooks: Object.fromEntries(names.map((n) => [n, (v: tf.Tensor) => v])) });
  assert.equal(maxDiff(ident.logits!, base.logits!.dataSync() as Float32Array), 0);
  assert.deepEqual(ident.unusedHooks, []);
  const zeroed = model.forward({ inputIds: inp.input_ids, pixelValues: pv, imageGridThw: grids }, { hooks: { 'projector.out': (v) => tf.zerosLike(v) } });
  const L0 = base.logits!.arraySync() as number[][][];
  const L1 = zeroed.logits!.arraySync() as number[][][];
  assert.deepEqual(L1[0][2], L0[0][2]); // before the image: unchanged
  assert.notDeepEqual(L1[0][10], L0[0][10]);
  [base, ident, zeroed].forEach((r) => r.dispose());
});

test('unsupported model_type (Qwen2.5-VL) is one clear ConfigError naming the supported ones', () => {
  const dir = withConfig('qwen25', (c) => (c.model_type = 'qwen2_5_vl'));
  assert.throws(() => loadModelFromDir(dir), (e: Error) => e instanceof ConfigError && /qwen2_5_vl/.test(e.message) && /qwen2_vl/.test(e.message));
});

test('bad inputs: token/grid mismatch and wrong patch width', () => {
  assert.throws(() => model.forward({ inputIds: inp.input_ids, pixelValues: pv, imageGridThw: [grids[0]] }), (e: Error) => e instanceof InputError);
  const bad = tf.zeros([48, 95]);
  assert.throws(() => model.forward({ inputIds: inp.input_ids, pixelValues: bad, imageGridThw: grids }), (e: Error) => e instanceof InputError && /\[patches, 96\]/.test(e.message));
  bad.dispose();
});
