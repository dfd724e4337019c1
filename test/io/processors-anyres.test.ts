// LLaVA-NeXT anyres: pixel_values from raw uint8 images, intermediates and token layout, all
// against fixture E (transformers 4.45.2 + Pillow 9.4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rgbFromNested, padImage } from '../../src/io/image';
import {
  anyresLayout,
  batchAnyres,
  llavaNextPreprocess,
  llavaNextProcessorConfig,
  parseAnyresModelConfig,
  patchOutputSize,
  selectBestResolution,
} from '../../src/io/processors';
import { ConfigError, InputError } from '../../src/errors';
import { flat } from '../models/helpers';
import { countDiffs, fixtureJson } from './vision-fixtures';

type Nested = number[][][];
interface PerImage {
  best_resolution_hw: [number, number];
  resized_hw: [number, number];
  pad_top_bottom: number;
  pad_left_right: number;
  num_crops_plus_base: number;
  resized_for_patching_uint8_hwc: Nested;
}
interface LayoutRef {
  base_grid: [number, number];
  best_resolution_hw: [number, number];
  crop_grid_rows_cols: [number, number];
  full_feature_grid_hw: [number, number];
  kept_rows: [number, number];
  kept_cols: [number, number];
  unpadded_grid_hw: [number, number];
  num_image_tokens: number;
  num_newlines: number;
}
const E = fixtureJson('llava_next_tiny_E', 'inputs.json') as {
  raw_images_uint8_hwc: Nested[];
  pixel_values: unknown;
  image_sizes: [number, number][];
  num_image_tokens_per_image: number[];
  anyres_layout: LayoutRef[];
  preprocessing: { per_image: PerImage[]; image_mean: number[]; image_std: number[] };
};
const config = parseAnyresModelConfig(fixtureJson('llava_next_tiny_E', 'config.json'));
const proc = llavaNextProcessorConfig(config.visionImageSize, config.gridPinpoints);
const raws = E.raw_images_uint8_hwc.map((r) => rgbFromNested(r));

test('best resolution, aspect-kept size and padding match the processor', () => {
  raws.forEach((img, i) => {
    const ref = E.preprocessing.per_image[i];
    const best = selectBestResolution(img.height, img.width, config.gridPinpoints);
    assert.deepEqual(best, ref.best_resolution_hw);
    assert.deepEqual(patchOutputSize(img.height, img.width, best), ref.resized_hw);
    const r = llavaNextPreprocess(img, proc);
    assert.deepEqual([r.resized.height, r.resized.width], ref.resized_hw);
    assert.equal(countDiffs(r.resized.data, rgbFromNested(ref.resized_for_patching_uint8_hwc).data), 0);
    const padded = padImage(rgbFromNested(ref.resized_for_patching_uint8_hwc), {
      top: ref.pad_top_bottom,
      bottom: ref.pad_top_bottom,
      left: ref.pad_left_right,
      right: ref.pad_left_right,
    });
    assert.equal(countDiffs(r.padded.data, padded.data), 0);
    assert.equal(r.shape[0], ref.num_crops_plus_base);
  });
});

test('pixel_values from raw uint8 images equal HF exactly (batch zero-padded to 5 crops)', () => {
  const items = raws.map((img) => llavaNextPreprocess(img, proc));
  const batch = batchAnyres(items);
  assert.deepEqual(batch.shape, [2, 5, 3, 28, 28]);
  assert.deepEqual(batch.imageSizes, E.image_sizes);
  assert.equal(countDiffs(batch.pixelValues, flat(E.pixel_values)), 0);
});

test('token layout: 52 and 56 tokens, unpadding and newline bookkeeping as in the model', () => {
  E.image_sizes.forEach((size, i) => {
    const l = anyresLayout(size, config);
    const ref = E.anyres_layout[i];
    assert.equal(l.numTokens, E.num_image_tokens_per_image[i]);
    assert.equal(l.numTokens, ref.num_image_tokens);
    assert.deepEqual([l.baseRows, l.baseCols], ref.base_grid);
    assert.deepEqual(l.bestResolution, ref.best_resolution_hw);
    assert.deepEqual([l.gridRows, l.gridCols], ref.crop_grid_rows_cols);
    assert.deepEqual([l.fullRows, l.fullCols], ref.full_feature_grid_hw);
    assert.deepEqual(l.keptRows, ref.kept_rows);
    assert.deepEqual(l.keptCols, ref.kept_cols);
    assert.deepEqual([l.unpaddedRows, l.unpaddedCols], ref.unpadded_grid_hw);
    assert.equal(l.newlineTokens, ref.num_newlines);
    assert.equal(l.numTokens, l.baseTokens + l.unpaddedRows * (l.unpaddedCols + 1));
    assert.deepEqual(JSON.parse(JSON.stringify(l)), l);
  });
  assert.deepEqual([52, 56], E.num_image_tokens_per_image);
});

test('LLaVA-1.6 sized example: 336 px, default pinpoints', () => {
  const pins = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]] as const;
  // 480x640 (h x w): 672x672 keeps 504*672 effective pixels (= all 307200 capped), least waste among ties.
  assert.deepEqual(selectBestResolution(480, 640, pins), [672, 672]);
  const l = anyresLayout([480, 640], { gridPinpoints: pins, visionImageSize: 336, patchSize: 14 });
  // 2x2 tiles -> 48x48 features; 640/480 > 1 so rows are cut: int(480*48/640) = 36, pad 6 -> rows 6..42.
  assert.deepEqual([l.gridRows, l.gridCols, l.keptRows, l.unpaddedCols], [2, 2, [6, 42], 48]);
  assert.equal(l.numTokens, 576 + 36 * 49);
});

test('config errors: strategy "full" and bad pinpoints are refused; bad sizes are InputErrors', () => {
  const cfg = fixtureJson('llava_next_tiny_E', 'config.json');
  assert.throws(() => parseAnyresModelConfig({ ...cfg, vision_feature_select_strategy: 'full' }), ConfigError);
  assert.throws(() => parseAnyresModelConfig({ ...cfg, image_grid_pinpoints: [[28]] }), ConfigError);
  assert.throws(() => anyresLayout([0, 10], config), InputError);
});
