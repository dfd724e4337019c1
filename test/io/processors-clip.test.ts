// CLIP / LLaVA-1.5 processor: the pipeline is resize -> crop -> normalise, each step already
// checked against HF; here the composition, config parsing and token-count helpers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RgbImage, centerCrop, resizePil, toChwFloat, padToSquare, meanFill } from '../../src/io/image';
import { clipImageLayout, clipPreprocess, llava15ProcessorConfig, parseClipProcessorConfig, stackChw } from '../../src/io/processors';
import { ConfigError } from '../../src/errors';
import { countDiffs } from './vision-fixtures';

function pattern(w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 7)) & 255;
  return { width: w, height: h, data };
}

test('LLaVA-1.5 processor = shortest edge 336 (PIL bicubic), centre crop 336, CLIP normalise', () => {
  const img = pattern(400, 300);
  const out = clipPreprocess(img, llava15ProcessorConfig());
  assert.deepEqual([out.channels, out.height, out.width], [3, 336, 336]);
  const manual = toChwFloat(centerCrop(resizePil(img, 448, 336), 336, 336));
  assert.equal(countDiffs(out.data, manual.data), 0);
});

test('pad_to_square: LLaVA mean colour, then the same pipeline', () => {
  const img = pattern(40, 20);
  const cfg = { ...llava15ProcessorConfig(28), padToSquare: 'mean' as const };
  const out = clipPreprocess(img, cfg);
  const manual = toChwFloat(resizePil(padToSquare(img, meanFill()), 28, 28));
  assert.equal(countDiffs(out.data, manual.data), 0);
});

test('preprocessor_config.json parsing (llava-1.5-7b-hf shape) and errors', () => {
  const cfg = parseClipProcessorConfig({
    crop_size: { height: 336, width: 336 },
    do_center_crop: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: [0.48145466, 0.4578275, 0.40821073],
    image_std: [0.26862954, 0.26130258, 0.27577711],
    resample: 3,
    rescale_factor: 0.00392156862745098,
    size: { shortest_edge: 336 },
  });
  assert.deepEqual(cfg, llava15ProcessorConfig());
  assert.deepEqual(parseClipProcessorConfig({ size: 224, crop_size: 224 }).size, { shortestEdge: 224 });
  assert.throws(() => parseClipProcessorConfig({ resample: 1 }), ConfigError);
  assert.throws(() => parseClipProcessorConfig({ size: { longest: 3 } }), ConfigError);
});

test('token layouts: 336/14 -> 576 (+CLS with strategy full on CLIP, none on SigLIP)', () => {
  assert.deepEqual(clipImageLayout(336, 14), { kind: 'grid', rows: 24, cols: 24, cls: 0 });
  assert.equal(clipImageLayout(28, 7, { strategy: 'full' }).cls, 1);
  assert.equal(clipImageLayout(28, 7, { strategy: 'full', hasCls: false }).cls, 0);
  assert.throws(() => clipImageLayout(30, 7), ConfigError);
  const s = stackChw([clipPreprocess(pattern(30, 30), llava15ProcessorConfig(28)), clipPreprocess(pattern(50, 30), llava15ProcessorConfig(28))]);
  assert.deepEqual(s.shape, [2, 3, 28, 28]);
});
