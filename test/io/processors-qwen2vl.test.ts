// Qwen2-VL: patch flattening reproduces fixture D exactly; smart_resize matches the HF formula.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChwImage, solidImage, RgbImage } from '../../src/io/image';
import {
  batchQwen2VL,
  parseQwen2VLProcessorConfig,
  qwen2vlPatchify,
  qwen2vlPreprocess,
  qwen2vlProcessorConfig,
  qwenImageLayout,
  roundHalfEven,
  smartResize,
} from '../../src/io/processors';
import { InputError } from '../../src/errors';
import { flat } from '../models/helpers';
import { countDiffs, fixtureJson } from './vision-fixtures';

const D = fixtureJson('qwen2vl_tiny_D', 'inputs.json') as {
  images_chw: number[][][][];
  pixel_values: unknown;
  image_grid_thw: [number, number, number][];
  input_ids: number[][];
};
const Dcfg = parseQwen2VLProcessorConfig({}, fixtureJson('qwen2vl_tiny_D', 'config.json'));

test('config: patch/merge/temporal sizes come from the model config when no preprocessor file', () => {
  assert.deepEqual([Dcfg.patchSize, Dcfg.mergeSize, Dcfg.temporalPatchSize], [4, 2, 2]);
  const p = parseQwen2VLProcessorConfig({ min_pixels: 100, max_pixels: 1000, patch_size: 14 });
  assert.deepEqual([p.patchSize, p.minPixels, p.maxPixels], [14, 100, 1000]);
});

test('D: pixel_values [48, 96] and image_grid_thw from images_chw, bit-exact', () => {
  const items = D.images_chw.map((im) => {
    const chw: ChwImage = { channels: im.length, height: im[0].length, width: im[0][0].length, data: flat(im) };
    return qwen2vlPatchify([chw], Dcfg);
  });
  const b = batchQwen2VL(items);
  assert.deepEqual(b.shape, [48, 96]);
  assert.deepEqual(b.imageGridThw, D.image_grid_thw);
  assert.equal(countDiffs(b.pixelValues, flat(D.pixel_values)), 0);
  // Image tokens in D's prompts: t*h*w / merge² = 6 per image, between vision_start (295) and vision_end (296).
  items.forEach((it, i) => {
    assert.equal(it.numTokens, 6);
    assert.equal(D.input_ids[i].filter((t) => t === 297).length, it.numTokens);
    const l = qwenImageLayout(it.gridThw, Dcfg.mergeSize);
    assert.equal(l.t * l.h * l.w, it.numTokens);
  });
});

test('roundHalfEven is Python round()', () => {
  assert.deepEqual([0.5, 1.5, 2.5, 3.5, 2.4999, 2.5001, 7].map(roundHalfEven), [0, 2, 2, 4, 2, 3, 7]);
});

test('smartResize equals the HF formula (values evaluated from smart_resize in Python)', () => {
  // factor 28, min 56*56, max 28*28*1280:
  // 480x640: round(17.14)=17 -> 476, round(22.86)=23 -> 644, inside the pixel range.
  assert.deepEqual(smartResize(480, 640), [476, 644]);
  // 50x50 -> 56x56 exactly at min_pixels (not below, so no upscale).
  assert.deepEqual(smartResize(50, 50), [56, 56]);
  // 28x28 -> 784 < 3136: beta = 2, ceil(28*2/28)*28 = 56.
  assert.deepEqual(smartResize(28, 28), [56, 56]);
  // 70/28 = 2.5 rounds to 2 (half to even), 42/28 = 1.5 rounds to 2.
  assert.deepEqual(smartResize(70, 70), [56, 56]);
  assert.deepEqual(smartResize(98, 42), [112, 56]);
  // Above max_pixels: beta = sqrt(h*w / max); floor(h/beta/28)*28.
  assert.deepEqual(smartResize(4000, 3000), [1148, 840]);
  assert.deepEqual(smartResize(1080, 1920), [728, 1316]);
  assert.deepEqual(smartResize(1000, 1000, 28, 3136, 200704), [448, 448]);
  assert.deepEqual(smartResize(16, 24, 8, 64, 10000), [16, 24]);
  assert.throws(() => smartResize(20, 100), InputError);
  assert.throws(() => smartResize(28, 6000), InputError);
});

test('end-to-end on a uint8 image: resize, normalise, patchify, 2x2 merge-window order', () => {
  // Image whose value encodes the column block, so the row order can be checked.
  const w = 56;
  const h = 28;
  const img: RgbImage = solidImage(w, h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) img.data.fill(x < 28 ? 10 : 250, (y * w + x) * 3, (y * w + x) * 3 + 3);
  const cfg = qwen2vlProcessorConfig({ minPixels: 28 * 28, doNormalize: false });
  const r = qwen2vlPreprocess(img, cfg);
  assert.deepEqual(r.gridThw, [1, 2, 4]);
  assert.deepEqual(r.shape, [8, 3 * 2 * 14 * 14]);
  assert.equal(r.numTokens, 2);
  // Rows 0..3 are the first 2x2 window (left block), rows 4..7 the second (right block).
  const at = (row: number) => r.pixelValues[row * r.shape[1]];
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7].map(at), [...Array(4).fill(Math.fround(10 / 255)), ...Array(4).fill(Math.fround(250 / 255))]);
  assert.deepEqual([r.resized?.width, r.resized?.height], [56, 28]);
});
