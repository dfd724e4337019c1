// PixtralImageProcessor from the raw uint8 images of pixtral_tiny_P: the processed sizes and pixel values HF
// 4.45.2 produced, and the model fed from raw images gives HF's logits.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { rgbFromNested } from '../../src/io/image';
import {
  padImagesToBatch,
  parsePixtralProcessorConfig,
  pixtralOutputSize,
  pixtralPreprocess,
  pixtralProcessorConfig,
} from '../../src/io/processors';
import { loadModelFromDir } from '../../src/models/load';
import { FIXTURES2 } from '../fixtures/paths';
import { maxDiff, readJson } from '../models/helpers';

const DIR = path.join(FIXTURES2, 'pixtral_tiny_P');
const inp = readJson(path.join(DIR, 'inputs.json'));
const out = readJson(path.join(DIR, 'outputs.json'));
const cfg = parsePixtralProcessorConfig(readJson(path.join(DIR, 'preprocessor_config.json')));
/** Raw images in row order (the tower takes all images of the batch as one list). */
const raws = (inp.raw_images_uint8_hwc as number[][][][][]).flat(1).map((r, i) => rgbFromNested(r, `image ${i}`));

before(async () => {
  await initEngine();
});
after(() => shutdownEngine());

test('preprocessor_config.json: longest edge 42, 7 px patches, bicubic, CLIP statistics', () => {
  assert.equal(cfg.longestEdge, 42);
  assert.deepEqual(cfg.patchSize, { height: 7, width: 7 });
  assert.equal(cfg.resample, 'bicubic');
  assert.deepEqual(cfg.mean, [0.48145466, 0.4578275, 0.40821073]);
});

test('output size: shrink to the longest edge rounding up (4.45.2 np.ceil), then up to whole patches; never enlarge', () => {
  assert.deepEqual(pixtralOutputSize(30, 47, 42, { height: 7, width: 7 }), [28, 42]);
  assert.deepEqual(pixtralOutputSize(40, 18, 42, { height: 7, width: 7 }), [42, 21]);
  // 43 / 2 = 21.5: ceil gives 22 → 4 patches (floor, as later transformers do, would give 21 → 3 patches).
  assert.deepEqual(pixtralOutputSize(100, 43, 50, { height: 7, width: 7 }), [56, 28]);
  assert.deepEqual(pixtralOutputSize(16, 16, 1024, { height: 16, width: 16 }), [16, 16]);
});

test('P: pixel values and image sizes from the raw uint8 images equal HF PixtralImageProcessor', () => {
  const want = (inp.pixel_values as number[][][][][]).flat(1);
  const sizes = (inp.image_sizes as number[][][]).flat(1);
  raws.forEach((img, i) => {
    const p = pixtralPreprocess(img, cfg);
    assert.deepEqual(p.imageSize, sizes[i]);
    assert.deepEqual(p.shape, [3, ...sizes[i]]);
    assert.deepEqual([p.layout.rows, p.layout.cols], [sizes[i][0] / 7, sizes[i][1] / 7]);
    const d = maxDiff(p.pixelValues, want[i]);
    assert.ok(d < 1e-6, `image ${i}: pixel values differ by ${d}`);
  });
});

test('defaults without a preprocessor_config.json follow the tower (longest edge = image_size, patch = patch_size)', () => {
  const d = pixtralProcessorConfig({ longestEdge: 42, patchSize: 7 });
  const p = pixtralPreprocess(raws[0], d);
  assert.ok(maxDiff(p.pixelValues, pixtralPreprocess(raws[0], cfg).pixelValues) === 0);
});

test('P from raw images through hopscope\'s processor: logits within 1e-5 of HF', () => {
  const b = padImagesToBatch(raws.map((r) => pixtralPreprocess(r, cfg)).map((p) => ({ data: p.pixelValues, shape: p.shape })));
  assert.deepEqual(b.shape, [2, 3, 42, 42]);
  const x = tf.tensor(b.pixelValues, b.shape);
  const model = loadModelFromDir(DIR);
  try {
    const r = model.forward({ inputIds: inp.input_ids, attentionMask: inp.attention_mask, pixelValues: x, imageSizes: b.imageSizes });
    const d = maxDiff(r.logits!, out.logits, (inp.attention_mask as number[][]).flat(), model.vocabSize);
    r.dispose();
    assert.ok(d < 1e-5, `logits differ by ${d}`);
  } finally {
    model.dispose();
    x.dispose();
  }
});

test('zero padding of smaller images does not leak into their patches', () => {
  const b = padImagesToBatch([
    { data: Float32Array.from([1, 2, 3, 4]), shape: [1, 2, 2] },
    { data: Float32Array.from([5, 6, 7]), shape: [1, 1, 3] },
  ]);
  assert.deepEqual(b.shape, [2, 1, 2, 3]);
  assert.deepEqual([...b.pixelValues], [1, 2, 0, 3, 4, 0, 5, 6, 7, 0, 0, 0]);
  assert.deepEqual(b.imageSizes, [[2, 2], [1, 3]]);
});
