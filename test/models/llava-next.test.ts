// LLaVA-NeXT ("anyres"): parity with HF on fixture E (packed features, logits, hidden states, generation),
// the same from raw uint8 images through hopscope's own processor, and checks that nothing is tuned to E:
// other pinpoints and image sizes (token roles map to the right crop/patch), two images in one row,
// padded rows.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { InputError } from '../../src/errors';
import { rgbFromNested, type RgbImage } from '../../src/io/image';
import { imageTokenRole } from '../../src/io/prompt';
import { anyresLayout, batchAnyres, llavaNextPreprocess, llavaNextProcessorConfig, parseAnyresModelConfig } from '../../src/io/processors';
import { LlavaNextModel } from '../../src/models/llava-next/model';
import { loadModelFromDir } from '../../src/models/load';
import { fixture, flat, maxDiff, pixels, readJson } from './helpers';

const DIR = fixture('llava_next_tiny_E');
const inp = readJson(path.join(DIR, 'inputs.json'));
const out = readJson(path.join(DIR, 'outputs.json'));
const TOL = 1e-5;
const IMG = 299;

let model: LlavaNextModel;
let pv: tf.Tensor;
let tmp: string;
before(async () => {
  await initEngine();
  model = loadModelFromDir(DIR) as LlavaNextModel;
  pv = pixels(inp.pixel_values);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-llava-next-'));
});
after(() => {
  model.dispose();
  pv.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
  shutdownEngine();
});

const rowsOf = (mask: number[][]) => mask.flat();

test('E: packed features, crop features, logits, every hidden state and the last layer match HF', () => {
  assert.equal(model.family, 'llava_next');
  const names = [0, 1, 2, 3].map((i) => `lm.blocks.${i}.resid_pre`).concat(['lm.final_norm', 'vision.features', 'projector.out', 'projector.packed']);
  const r = model.forward({ inputIds: inp.input_ids, attentionMask: inp.attention_mask, pixelValues: pv, imageSizes: inp.image_sizes }, { cache: names });
  try {
    const m = rowsOf(inp.attention_mask);
    assert.ok(maxDiff(r.cache.get('projector.packed')!, out.image_features_packed) <= TOL);
    assert.deepEqual(r.cache.get('projector.packed')!.shape, [108, 64]);
    assert.ok(maxDiff(r.cache.get('vision.features')!, out.vision.selected_features) <= TOL);
    assert.ok(maxDiff(r.cache.get('projector.out')!, out.vision.projector_output) <= TOL);
    assert.ok(maxDiff(r.logits!, out.logits, m, 300) <= TOL);
    for (let i = 0; i < 4; i++) assert.ok(maxDiff(r.cache.get(`lm.blocks.${i}.resid_pre`)!, out.hidden_states[i], m, 64) <= TOL, `hidden ${i}`);
    assert.ok(maxDiff(r.cache.get('lm.final_norm')!, out.hidden_states[4], m, 64) <= TOL);
    assert.ok(maxDiff(r.hidden, out.last_layer_output_before_norm, m, 64) <= TOL);
  } finally {
    r.dispose();
  }
});

test('E: greedy generation (tokens and step logits) matches HF', () => {
  const one = pv.slice([0], [1]);
  const g = model.generate({ inputIds: [inp.input_ids[0]], pixelValues: one, imageSizes: [inp.image_sizes[0]] }, { maxNewTokens: 5, returnStepLogits: true });
  one.dispose();
  assert.deepEqual(g.newTokens[0], out.generation.new_tokens);
  assert.ok(maxDiff(Float32Array.from(g.stepLogits!.flatMap((s) => [...s[0]])), out.generation.step_logits) <= TOL);
});

test('E from raw uint8 images through hopscope\'s processor gives HF logits', () => {
  const cfg = parseAnyresModelConfig(readJson(path.join(DIR, 'config.json')));
  const proc = llavaNextProcessorConfig(cfg.visionImageSize, cfg.gridPinpoints);
  const b = batchAnyres(inp.raw_images_uint8_hwc.map((r: never) => llavaNextPreprocess(rgbFromNested(r), proc)));
  const x = tf.tensor(b.pixelValues, b.shape);
  const r = model.forward({ inputIds: inp.input_ids, attentionMask: inp.attention_mask, pixelValues: x, imageSizes: b.imageSizes });
  assert.ok(maxDiff(r.logits!, out.logits) <= TOL);
  r.dispose();
  x.dispose();
});

test('E: image spans and layouts agree with the fixture and the processor', () => {
  const spans = model.imageSpans(inp.input_ids, inp.image_sizes);
  assert.deepEqual(spans.map((s) => [s.image, s.row, s.length]), [[0, 0, 52], [1, 1, 56]]);
  spans.forEach((s, k) => {
    const ref = inp.anyres_layout[k];
    assert.equal(inp.input_ids[s.row][s.start], IMG);
    assert.notEqual(inp.input_ids[s.row][s.start - 1], IMG);
    assert.deepEqual([s.layout.gridRows, s.layout.gridCols], ref.crop_grid_rows_cols);
    assert.deepEqual(s.layout.keptRows, ref.kept_rows);
    assert.deepEqual(s.layout.keptCols, ref.kept_cols);
    assert.deepEqual([s.layout.unpaddedRows, s.layout.unpaddedCols], ref.unpadded_grid_hw);
    assert.equal(s.length, inp.num_image_tokens_per_image[k]);
  });
});

test('E BF16 checkpoint: a smoke test within 1e-2 of the F32 reference', () => {
  const m = loadModelFromDir(DIR, { file: 'model-bf16.safetensors' });
  const r = m.forward({ inputIds: inp.input_ids, pixelValues: pv, imageSizes: inp.image_sizes });
  const d = maxDiff(r.logits!, out.logits);
  assert.ok(d > 0 && d < 1e-2, `bf16 diff ${d}`);
  r.dispose();
  m.dispose();
});

// ---------------------------------------------------------------------------------------------
// Generalisation: another pinpoint set and image sizes; the model's packing must follow the layout.

function noiseImage(h: number, w: number, seed: number): RgbImage {
  const data = new Uint8Array(h * w * 3);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  return { width: w, height: h, data };
}

function withPinpoints(pins: number[][]): LlavaNextModel {
  const dir = path.join(tmp, `pins-${pins.flat().join('-')}`);
  fs.mkdirSync(dir);
  fs.symlinkSync(path.join(DIR, 'model.safetensors'), path.join(dir, 'model.safetensors'));
  const cfg = readJson(path.join(DIR, 'config.json'));
  cfg.image_grid_pinpoints = pins;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  return loadModelFromDir(dir) as LlavaNextModel;
}

const PINS = [[28, 28], [28, 84], [84, 28], [56, 56], [28, 56], [56, 84]];
const SIZES: [number, number][] = [[20, 90], [90, 21], [50, 50], [33, 61], [61, 40]];

test('other pinpoints and sizes: every token comes from the crop/patch its role names (base, tile, newline)', () => {
  const m = withPinpoints(PINS);
  try {
    const acfg = { ...m.anyres };
    const proc = llavaNextProcessorConfig(acfg.visionImageSize, acfg.gridPinpoints);
    const items = SIZES.map(([h, w], i) => llavaNextPreprocess(noiseImage(h, w, 7 + i), proc));
    const b = batchAnyres(items);
    const layouts = SIZES.map((s) => anyresLayout(s, acfg));
    // The grids differ between images: at least one wide, one tall, one square grid, and some unpadding.
    assert.ok(new Set(layouts.map((l) => `${l.gridRows}x${l.gridCols}`)).size >= 3);
    assert.ok(layouts.some((l) => l.unpaddedRows < l.fullRows) && layouts.some((l) => l.unpaddedCols < l.fullCols));
    const x = tf.tensor(b.pixelValues, b.shape);
    const packed = tf.tidy(() => m.encodeAnyres(x, b.imageSizes)).arraySync() as number[][];
    const crops = tf.tidy(() => {
      const flatCrops = tf.concat(items.map((it, k) => x.slice([k, 0, 0, 0, 0], [1, it.shape[0], 3, 28, 28]).reshape([it.shape[0], 3, 28, 28])), 0);
      return m.encodeImages(flatCrops);
    }).arraySync() as number[][][];
    const newline = m.imageNewline.arraySync() as number[];
    x.dispose();
    assert.equal(packed.length, layouts.reduce((a, l) => a + l.numTokens, 0));
    let tok = 0;
    let crop0 = 0;
    for (const l of layouts) {
      const g = l.featureGrid;
      for (let k = 0; k < l.numTokens; k++, tok++) {
        const role = imageTokenRole(l, k);
        let want: number[];
        if (role.part === 'base') want = crops[crop0][role.row * g + role.col];
        else if (role.part === 'newline') want = newline;
        else if (role.part === 'tile') {
          const R = role.row + l.keptRows[0];
          const C = role.col + l.keptCols[0];
          want = crops[crop0 + 1 + Math.floor(R / g) * l.gridCols + Math.floor(C / g)][(R % g) * g + (C % g)];
        } else throw new Error(`unexpected role ${role.part}`);
        assert.deepEqual(packed[tok], want, `image token ${k} (${JSON.stringify(role)})`);
      }
      crop0 += l.gridRows * l.gridCols + 1;
    }
  } finally {
    m.dispose();
  }
});

test('two images in one row give each image the same features as one image per row', () => {
  const m = withPinpoints([[28, 56], [56, 28], [56, 56], [28, 84]]);
  try {
    const acfg = m.anyres;
    const proc = llavaNextProcessorConfig(acfg.visionImageSize, acfg.gridPinpoints);
    const sizes: [number, number][] = [[30, 75], [64, 40]];
    const items = sizes.map(([h, w], i) => llavaNextPreprocess(noiseImage(h, w, 100 + i), proc));
    const b = batchAnyres(items);
    const n = sizes.map((s) => m.tokensFor(s));
    const img = (k: number) => new Array(n[k]).fill(IMG);
    const both = [[1, 20, ...img(0), 30, 40, ...img(1), 50]];
    const x = tf.tensor(b.pixelValues, b.shape);
    const rTwo = m.forward({ inputIds: both, pixelValues: x, imageSizes: b.imageSizes }, { cache: ['lm.embed'] });
    const two = rTwo.cache.get('lm.embed')!.arraySync() as number[][][];
    rTwo.dispose();
    const spans = m.imageSpans(both, b.imageSizes);
    assert.deepEqual(spans.map((s) => [s.row, s.start, s.length]), [[0, 2, n[0]], [0, 4 + n[0], n[1]]]);
    for (let k = 0; k < 2; k++) {
      const one = tf.tidy(() => x.slice([k, 0, 0, 0, 0], [1, ...x.shape.slice(1)]));
      const r = m.forward({ inputIds: [[1, 20, ...img(k), 50]], pixelValues: one, imageSizes: [b.imageSizes[k]] }, { cache: ['lm.embed'] });
      const single = (r.cache.get('lm.embed')!.arraySync() as number[][][])[0].slice(2, 2 + n[k]);
      r.dispose();
      one.dispose();
      const got = two[0].slice(spans[k].start, spans[k].start + n[k]);
      assert.ok(maxDiff(Float32Array.from(got.flat()), Float32Array.from(single.flat())) <= 1e-6, `image ${k}`);
    }
    x.dispose();
  } finally {
    m.dispose();
  }
});

test('padded rows (left and right) give the unpadded logits on real tokens', () => {
  const ref = out.logits as number[][][];
  for (const side of ['left', 'right'] as const) {
    const pad = [3, 5];
    const ids = inp.input_ids.map((r: number[], b: number) => (side === 'left' ? [...new Array(pad[b]).fill(0), ...r, ...new Array(pad[1 - b]).fill(0)] : [...r, ...new Array(pad[b] + pad[1 - b]).fill(0)]));
    const mask = ids.map((_: number[], b: number) => {
      const real = inp.input_ids[b].length;
      const lead = side === 'left' ? pad[b] : 0;
      return ids[b].map((__: number, t: number) => (t >= lead && t < lead + real ? 1 : 0));
    });
    const r = model.forward({ inputIds: ids, attentionMask: mask, pixelValues: pv, imageSizes: inp.image_sizes });
    const L = r.logits!.arraySync() as number[][][];
    r.dispose();
    for (let b = 0; b < 2; b++) {
      const lead = side === 'left' ? pad[b] : 0;
      const got = L[b].slice(lead, lead + inp.input_ids[b].length);
      assert.ok(maxDiff(Float32Array.from(got.flat()), flat(ref[b])) <= TOL, `${side} row ${b}`);
    }
  }
});

test('bad inputs: missing imageSizes, wrong token count, too few crops name the fix', () => {
  assert.throws(() => model.forward({ inputIds: inp.input_ids, pixelValues: pv }), (e: Error) => e instanceof InputError && /imageSizes/.test(e.message));
  const short = inp.input_ids.map((r: number[], b: number) => (b === 0 ? r.map((t, i) => (i === r.indexOf(IMG) ? 5 : t)) : r));
  assert.throws(
    () => model.forward({ inputIds: short, pixelValues: pv, imageSizes: inp.image_sizes }),
    (e: Error) => e instanceof InputError && /52 \+ 56/.test(e.message),
  );
  const three = tf.tidy(() => pv.slice([0, 0], [2, 3]));
  assert.throws(
    () => model.forward({ inputIds: inp.input_ids, pixelValues: three, imageSizes: inp.image_sizes }),
    (e: Error) => e instanceof InputError && /needs 5 crops/.test(e.message),
  );
  three.dispose();
});

test('hook points: crops through the tower, packed features after the projector; identity hooks change nothing', () => {
  const points = model.hookPoints();
  const names = points.map((p) => p.name);
  assert.ok(names.indexOf('projector.out') < names.indexOf('projector.packed') && names.indexOf('projector.packed') < names.indexOf('lm.embed'));
  assert.deepEqual(points.find((p) => p.name === 'vision.features')!.axes, ['crop', 'patch', 'd_vision']);
  const inputs = { inputIds: inp.input_ids, pixelValues: pv, imageSizes: inp.image_sizes };
  const base = model.forward(inputs);
  const ident = model.forward(inputs, { hooks: Object.fromEntries(names.map((n) => [n, (v: tf.Tensor) => v])) });
  assert.equal(maxDiff(ident.logits!, base.logits!.dataSync() as Float32Array), 0);
  assert.deepEqual(ident.unusedHooks, []);
  // Zeroing the newline features changes only tokens from the first newline on.
  const spans = model.imageSpans(inp.input_ids, inp.image_sizes);
  const firstNl = spans[0].start + spans[0].layout.baseTokens + spans[0].layout.unpaddedCols;
  const nl = model.forward(inputs, {
    hooks: {
      'projector.packed': (v) => {
        const keep = new Float32Array(v.shape[0]).fill(1);
        spans.forEach((s, k) => {
          const off = k === 0 ? 0 : spans[0].length;
          for (let r = 0; r < s.layout.unpaddedRows; r++) keep[off + s.layout.baseTokens + r * s.layout.newlineEvery + s.layout.unpaddedCols] = 0;
        });
        return tf.mul(v, tf.tensor2d(keep, [v.shape[0], 1]));
      },
    },
  });
  const L0 = base.logits!.arraySync() as number[][][];
  const L1 = nl.logits!.arraySync() as number[][][];
  assert.deepEqual(L1[0].slice(0, firstNl), L0[0].slice(0, firstNl));
  assert.notDeepEqual(L1[0][firstNl], L0[0][firstNl]);
  [base, ident, nl].forEach((r) => r.dispose());
});
