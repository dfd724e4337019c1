// MllamaImageProcessor from raw uint8 images (fixture mllama_tiny_H): pixel values written exactly by HF
// 4.45.2, aspect-ratio ids and masks; the model from raw images gives HF's logits.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { ConfigError } from '../../src/errors';
import { rgbFromNested } from '../../src/io/image/types';
import { mllamaPreprocess, optimalTiledCanvas, parseMllamaProcessorConfig, sizeFitToCanvas, supportedAspectRatios } from '../../src/io/processors';
import { loadModelFromDir } from '../../src/models/load';
import { FIXTURES2 } from '../fixtures/paths';
import { flat, maxDiff, readJson } from '../models/helpers';

const DIR = path.join(FIXTURES2, 'mllama_tiny_H');
const inp = readJson(DIR + '/inputs.json');
const out = readJson(DIR + '/outputs.json');
const cfg = parseMllamaProcessorConfig(readJson(DIR + '/preprocessor_config.json'));
const raw = (inp.raw_images_uint8_hwc as number[][][][]).map((im, i) => [rgbFromNested(im, `raw image ${i}`)]);

before(async () => {
  await initEngine();
});
after(() => shutdownEngine());

test('aspect ratios in HF order, canvas choice and fit (upscale preferred, least area on ties)', () => {
  assert.deepEqual(supportedAspectRatios(4), [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1], [4, 1]]);
  assert.deepEqual(optimalTiledCanvas(20, 60, 4, 28), [28, 84]); // 1x3 and 1x4 both upscale 1.4: the smaller wins
  assert.deepEqual(optimalTiledCanvas(40, 40, 4, 28), [56, 56]);
  assert.deepEqual(optimalTiledCanvas(300, 30, 4, 28), [112, 28]); // no upscale possible: the mildest downscale
  assert.deepEqual(sizeFitToCanvas(20, 60, 28, 84, 28), [20, 60]); // already between a tile and the canvas: not resized
  assert.deepEqual(sizeFitToCanvas(300, 30, 112, 28, 28), [112, 11]);
});

test('pixel values exactly, aspect-ratio ids, masks and tile counts of the fixture', () => {
  const px = mllamaPreprocess(raw, cfg);
  assert.deepEqual(px.shape, [2, 1, 4, 3, 28, 28]);
  assert.deepEqual(px.aspectRatioIds, inp.aspect_ratio_ids);
  assert.deepEqual(px.aspectRatioMask, inp.aspect_ratio_mask);
  assert.deepEqual(px.numTiles, inp.num_tiles);
  assert.equal(maxDiff(px.data, flat(inp.pixel_values)), 0);
});

test('the model from raw images reproduces the logits of HF', () => {
  const model = loadModelFromDir(DIR);
  const px = mllamaPreprocess(raw, cfg);
  const pixels = tf.tensor(px.data, px.shape);
  try {
    // No cross-attention mask given: the model builds it from the ids as MllamaProcessor does.
    const r = model.forward({ inputIds: inp.input_ids, attentionMask: inp.attention_mask, pixelValues: pixels, aspectRatioIds: px.aspectRatioIds, aspectRatioMask: px.aspectRatioMask });
    const d = maxDiff(r.logits!, out.logits, (inp.attention_mask as number[][]).flat(), model.vocabSize);
    r.dispose();
    assert.ok(d < 1e-5, `logits from raw images differ by ${d}`);
  } finally {
    pixels.dispose();
    model.dispose();
  }
});

test('configs that cannot tile are refused by field', () => {
  assert.throws(() => parseMllamaProcessorConfig({ size: { height: 28, width: 32 } }), (e: Error) => e instanceof ConfigError && /square/.test(e.message));
  assert.throws(() => parseMllamaProcessorConfig({ do_pad: false }), /do_pad/);
});
