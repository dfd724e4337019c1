// PIL-bicubic port: bit-exact against the uint8 intermediates Pillow 9.4 produced inside
// LlavaNextImageProcessor (fixture E), plus behaviour on shapes the fixture does not cover.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rgbFromNested, resizePil, solidImage, RgbImage } from '../../src/io/image';
import { InputError } from '../../src/errors';
import { countDiffs, fixtureJson } from './vision-fixtures';

type Nested = number[][][];
const E = fixtureJson('llava_next_tiny_E', 'inputs.json') as {
  raw_images_uint8_hwc: Nested[];
  preprocessing: { per_image: { resized_for_patching_uint8_hwc: Nested; base_resized_uint8_hwc: Nested; resized_hw: [number, number] }[] };
};

test('bicubic resize is bit-exact vs Pillow for the anyres resize (40x70 -> 32x56, 70x30 -> 56x24)', () => {
  E.raw_images_uint8_hwc.forEach((raw, i) => {
    const want = rgbFromNested(E.preprocessing.per_image[i].resized_for_patching_uint8_hwc);
    const got = resizePil(rgbFromNested(raw), want.width, want.height, 'bicubic');
    assert.deepEqual([got.height, got.width], E.preprocessing.per_image[i].resized_hw);
    assert.equal(countDiffs(got.data, want.data), 0, `image ${i}: pixels differ from Pillow`);
  });
});

test('bicubic resize is bit-exact vs Pillow for the squashed base crop (-> 28x28)', () => {
  E.raw_images_uint8_hwc.forEach((raw, i) => {
    const want = rgbFromNested(E.preprocessing.per_image[i].base_resized_uint8_hwc);
    const got = resizePil(rgbFromNested(raw), 28, 28);
    assert.equal(countDiffs(got.data, want.data), 0, `image ${i}: pixels differ from Pillow`);
  });
});

test('same size returns an equal copy; one-axis resizes keep the other axis untouched', () => {
  const img = rgbFromNested(E.raw_images_uint8_hwc[0]);
  const same = resizePil(img, img.width, img.height);
  assert.notEqual(same.data, img.data);
  assert.equal(countDiffs(same.data, img.data), 0);
  const wOnly = resizePil(img, 35, img.height);
  assert.deepEqual([wOnly.width, wOnly.height], [35, img.height]);
  const hOnly = resizePil(img, img.width, 20);
  assert.deepEqual([hOnly.width, hOnly.height], [img.width, 20]);
});

test('constant images stay constant when up- and down-scaled (coefficients sum to one)', () => {
  const c: RgbImage = solidImage(7, 5, [200, 13, 77]);
  for (const [w, h] of [[31, 17], [3, 2], [7, 11], [1, 1]])
    for (const f of ['bicubic', 'bilinear'] as const) {
      const r = resizePil(c, w, h, f);
      for (let i = 0; i < w * h; i++) assert.deepEqual([...r.data.subarray(i * 3, i * 3 + 3)], [200, 13, 77], `${f} ${w}x${h}`);
    }
});

test('bad target sizes are InputErrors', () => {
  const c = solidImage(4, 4);
  assert.throws(() => resizePil(c, 0, 4), InputError);
  assert.throws(() => resizePil(c, 4, 2.5), InputError);
});
