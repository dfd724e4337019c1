// Parity with HuggingFace transformers 4.45.2 on pixtral_tiny_P (LLaVA with a Pixtral tower, Mistral text with
// head_dim 24 ≠ 64/4): logits and every hidden state on real tokens, the tower's output and the image features,
// greedy generation; the geometry of the [IMG]/[IMG_BREAK]/[IMG_END] rows; the 2-D RoPE's frequency split.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { InputError } from '../../src/errors';
import { padImagesToBatch, pixtralImageTokenIds } from '../../src/io/processors';
import { imageTokenRole } from '../../src/io/prompt';
import { selectorPositions, spansFromIds } from '../../src/interventions/selectors';
import { loadModelFromDir } from '../../src/models/load';
import type { Model } from '../../src/models/model';
import { PixtralModel } from '../../src/models/pixtral/model';
import { pixtralRopeTables } from '../../src/models/pixtral/vision';
import { FIXTURES2 } from '../fixtures/paths';
import { flat, maxDiff, readJson } from './helpers';

const TOL = 1e-5;
const DIR = path.join(FIXTURES2, 'pixtral_tiny_P');
const inp = readJson(path.join(DIR, 'inputs.json'));
const out = readJson(path.join(DIR, 'outputs.json'));
const IMG = inp.image_token_index as number;

/** The fixture's nested pixel_values (per row, per image, CHW of its own size) as one padded batch. */
function fixturePixels(rows: number[] = [0, 1]) {
  const items = rows.flatMap((b) => (inp.pixel_values[b] as number[][][][]).map((im) => ({ data: flat(im), shape: [im.length, im[0].length, im[0][0].length] })));
  const b = padImagesToBatch(items);
  return { pixels: tf.tensor(b.pixelValues, b.shape), imageSizes: b.imageSizes };
}

let model: Model;
let px: { pixels: tf.Tensor; imageSizes: [number, number][] };
before(async () => {
  await initEngine();
  model = loadModelFromDir(DIR);
  px = fixturePixels();
});
after(() => {
  model.dispose();
  px.pixels.dispose();
  shutdownEngine();
});

const hiddenNames = (m: Model) => [...Array.from({ length: m.numLayers }, (_, i) => `lm.blocks.${i}.resid_pre`), 'lm.final_norm'];

test('a llava config with a pixtral vision_config loads as the Pixtral family, images in the residual stream', () => {
  assert.ok(model instanceof PixtralModel);
  assert.equal(model.family, 'pixtral');
  assert.equal(model.imageInput, 'residual');
  assert.equal(model.text.headDim, 24);
  assert.notEqual(model.text.headDim, model.dModel / model.text.numHeads);
  const names = model.hookPoints().map((h) => h.name);
  for (const n of ['vision.embed', 'vision.blocks.1.resid_post', 'vision.features', 'projector.out', 'lm.blocks.3.attn.pattern', 'lm.logits']) assert.ok(names.includes(n), n);
});

test('P: logits, every hidden state (real tokens), vision output and image features within 1e-5', () => {
  const r = model.forward(
    { inputIds: inp.input_ids, attentionMask: inp.attention_mask, pixelValues: px.pixels, imageSizes: px.imageSizes },
    { cache: [...hiddenNames(model), 'vision.features', 'projector.out'] },
  );
  try {
    const rows = (inp.attention_mask as number[][]).flat();
    const d = maxDiff(r.logits!, out.logits, rows, model.vocabSize);
    assert.ok(d < TOL, `logits differ by ${d}`);
    hiddenNames(model).forEach((n, i) => {
      const h = maxDiff(r.cache.get(n)!, out.hidden_states[i], rows, model.dModel);
      assert.ok(h < TOL, `hidden_states[${i}] (${n}) differs by ${h}`);
    });
    const v = maxDiff(r.cache.get('vision.features')!, out.vision.hidden_states[0]);
    assert.ok(v < TOL, `vision output differs by ${v}`);
    const f = maxDiff(r.cache.get('projector.out')!, out.image_features);
    assert.ok(f < TOL, `image features differ by ${f}`);
    assert.deepEqual(r.unusedHooks, []);
  } finally {
    r.dispose();
  }
});

test('P: the per-head attention path of large images gives the same tower output', () => {
  const v = (model as PixtralModel).vision;
  const keep = v.batchedAttentionMax;
  v.batchedAttentionMax = 0;
  try {
    const r = model.forward({ inputIds: inp.input_ids, attentionMask: inp.attention_mask, pixelValues: px.pixels, imageSizes: px.imageSizes }, { cache: ['vision.features'] });
    const d = maxDiff(r.cache.get('vision.features')!, out.vision.hidden_states[0]);
    r.dispose();
    assert.ok(d < TOL, `vision output differs by ${d}`);
  } finally {
    v.batchedAttentionMax = keep;
  }
});

test('P: decoder weights streamed layer by layer give the same logits (Pixtral-12B does not fit wasm resident)', () => {
  const s = loadModelFromDir(DIR, { streaming: 'always' });
  try {
    assert.equal(s.decoder.w.layers.streaming, true);
    const r = s.forward({ inputIds: inp.input_ids, attentionMask: inp.attention_mask, pixelValues: px.pixels, imageSizes: px.imageSizes });
    const d = maxDiff(r.logits!, out.logits, (inp.attention_mask as number[][]).flat(), s.vocabSize);
    r.dispose();
    assert.ok(d < TOL, `streamed logits differ by ${d}`);
  } finally {
    s.dispose();
  }
});

test('P: greedy generation with a KV cache (tokens and step logits)', () => {
  const g = out.generation;
  const row = g.input_row as number;
  const one = fixturePixels([row]);
  const res = model.generate(
    { inputIds: [inp.input_ids[row]], attentionMask: [inp.attention_mask[row]], pixelValues: one.pixels, imageSizes: one.imageSizes },
    { maxNewTokens: g.max_new_tokens, returnStepLogits: true },
  );
  one.pixels.dispose();
  assert.deepEqual(res.newTokens[0], g.new_tokens);
  const d = maxDiff(Float32Array.from(res.stepLogits!.flatMap((s) => [...s[0]])), g.step_logits);
  assert.ok(d < TOL, `step logits differ by ${d}`);
});

test('P: each image is a patch grid whose rows of [IMG] are closed by [IMG_BREAK] / [IMG_END]', () => {
  const m = model as PixtralModel;
  const spans = m.imageSpans(inp.input_ids, px.imageSizes);
  assert.deepEqual(spans.map((s) => [s.image, s.row, s.start, s.length, s.layout.rows, s.layout.cols]), [
    [0, 0, 5, 28, 4, 6],
    [1, 1, 11, 24, 6, 3],
  ]);
  for (const s of spans) {
    const ids = inp.input_ids[s.row] as number[];
    assert.equal(s.patchPositions.length, s.layout.rows * s.layout.cols);
    assert.ok(s.patchPositions.every((p) => ids[p] === IMG));
    // The span's tokens are exactly what the processor writes for this layout.
    const want = pixtralImageTokenIds(s.layout, { image: IMG, imageBreak: inp.image_break_token_id, imageEnd: inp.image_end_token_id });
    assert.deepEqual(ids.slice(s.start, s.start + s.length), want);
  }
  // Selectors read the same layout: grid rows/cols pick [IMG] tokens, 'newline' the row terminators.
  const s1 = spans[1];
  const ids1 = (inp.input_ids[1] as number[]).slice(8); // row 1 without its left padding
  const rowSpans = spansFromIds(ids1, { imageTokenId: IMG, layouts: [s1.layout] });
  assert.equal(rowSpans.images.length, 1);
  assert.equal(rowSpans.images[0].length, 24);
  const firstCol = selectorPositions({ kind: 'image', cols: [0, 1] }, rowSpans).map((p) => p + 8);
  assert.deepEqual(firstCol, [0, 1, 2, 3, 4, 5].map((r) => s1.patchPositions[r * 3]));
  const breaks = selectorPositions({ kind: 'image', part: 'newline' }, rowSpans).map((p) => ids1[p]);
  assert.deepEqual(breaks, [12, 12, 12, 12, 12, 13]);
  assert.deepEqual(imageTokenRole(s1.layout, 4), { part: 'grid', row: 1, col: 0 });
});

test('P: a prompt whose [IMG] rows do not match the image grid is refused with the layout named', () => {
  const ids = (inp.input_ids as number[][]).map((r) => [...r]);
  // Swap a break and the [IMG] after it: same count, wrong geometry.
  [ids[0][11], ids[0][12]] = [ids[0][12], ids[0][11]];
  assert.throws(
    () => model.forward({ inputIds: ids, attentionMask: inp.attention_mask, pixelValues: px.pixels, imageSizes: px.imageSizes }),
    (e: unknown) => e instanceof InputError && /4 rows x 6 patches/.test(e.message),
  );
});

test('2-D RoPE: even frequencies turn with the row, odd ones with the column (PixtralRotaryEmbedding)', () => {
  const hd = 8;
  const f = [0, 1, 2, 3].map((i) => 1 / Math.pow(100, (2 * i) / hd));
  const { cos } = pixtralRopeTables(2, 3, hd, 100);
  const at = (r: number, c: number) => Array.from(cos.subarray((r * 3 + c) * hd, (r * 3 + c + 1) * hd));
  const want = (r: number, c: number) => {
    const half = [r * f[0], r * f[2], c * f[1], c * f[3]].map(Math.cos);
    return [...half, ...half];
  };
  for (const [r, c] of [[0, 0], [1, 2], [0, 1], [1, 0]]) at(r, c).forEach((v, i) => assert.ok(Math.abs(v - want(r, c)[i]) < 1e-6, `(${r},${c})[${i}]`));
});

test('P: repeated forwards, generations and refused inputs leave tf.memory().numTensors at baseline', () => {
  const base = tf.memory().numTensors;
  const one = fixturePixels([0]);
  const bad = (inp.input_ids as number[][]).map((r) => r.map((t, i) => (i === 11 ? IMG : t))); // a break turned into [IMG]
  for (let i = 0; i < 3; i++) {
    const r = model.forward(
      { inputIds: inp.input_ids, attentionMask: inp.attention_mask, pixelValues: px.pixels, imageSizes: px.imageSizes },
      { cache: ['vision.features', 'projector.out', 'lm.blocks.2.attn.pattern'], hooks: { 'vision.blocks.0.attn_out': (v) => tf.mul(v, 0.5), 'lm.blocks.1.resid_post': (v) => tf.add(v, 0) } },
    );
    r.dispose();
    const g = model.generate(
      { inputIds: [inp.input_ids[0]], pixelValues: one.pixels, imageSizes: one.imageSizes },
      { maxNewTokens: 3, run: { cache: ['lm.blocks.0.attn_out', 'vision.embed'] } },
    );
    tf.dispose([...g.cache.values()]);
    assert.throws(() => model.forward({ inputIds: bad, attentionMask: inp.attention_mask, pixelValues: px.pixels, imageSizes: px.imageSizes }), InputError);
  }
  one.pixels.dispose();
  assert.equal(tf.memory().numTensors, base);
});
