// Geometry and normalisation steps, checked against values worked out by hand from the HF code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RgbImage,
  centerCrop,
  padToSquare,
  meanFill,
  toChwFloat,
  shortestEdgeSize,
  padImage,
  OPENAI_CLIP_MEAN,
  OPENAI_CLIP_STD,
} from '../../src/io/image';
import { InputError } from '../../src/errors';

/** Image whose red channel encodes x and green y, so crops can be read back. */
function coords(w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      data[(y * w + x) * 3] = x + 1;
      data[(y * w + x) * 3 + 1] = y + 1;
      data[(y * w + x) * 3 + 2] = 200;
    }
  return { width: w, height: h, data };
}
const px = (img: RgbImage, x: number, y: number) => [...img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3)];

test('centerCrop inside the image: top/left = (orig - crop) // 2', () => {
  const c = centerCrop(coords(7, 6), 4, 3); // left = 3 // 2 = 1, top = 3 // 2 = 1
  assert.deepEqual([c.width, c.height], [4, 3]);
  assert.deepEqual(px(c, 0, 0), [2, 2, 200]);
  assert.deepEqual(px(c, 3, 2), [5, 4, 200]);
});

test('centerCrop larger than the image pads with zeros like HF (ceil padding on top/left)', () => {
  // 3x2 image, crop 6x5: new 6x5 canvas, top_pad = ceil(3/2) = 2, left_pad = ceil(3/2) = 2;
  // top = (2-5)//2 = -2 -> -2+2 = 0; left = (3-6)//2 = -2 -> 0. Image occupies x 2..4, y 2..3.
  const c = centerCrop(coords(3, 2), 6, 5);
  assert.deepEqual([c.width, c.height], [6, 5]);
  assert.deepEqual(px(c, 1, 1), [0, 0, 0]);
  assert.deepEqual(px(c, 2, 2), [1, 1, 200]);
  assert.deepEqual(px(c, 4, 3), [3, 2, 200]);
  assert.deepEqual(px(c, 5, 4), [0, 0, 0]);
  // Mixed: wider crop, shorter height. 4x6 image, crop 6x2: top = (6-2)//2 = 2; left pads 1 each side.
  const m = centerCrop(coords(4, 6), 6, 2);
  assert.deepEqual([m.width, m.height], [6, 2]);
  assert.deepEqual(px(m, 0, 0), [0, 0, 0]);
  assert.deepEqual(px(m, 1, 0), [1, 3, 200]);
  assert.deepEqual(px(m, 4, 1), [4, 4, 200]);
});

test('padToSquare centres with floor offset; black letter-box and LLaVA mean colour', () => {
  assert.deepEqual(meanFill(), [122, 116, 104]);
  const s = padToSquare(coords(5, 2)); // offset (5-2)//2 = 1 on top, 2 rows below
  assert.deepEqual([s.width, s.height], [5, 5]);
  assert.deepEqual(px(s, 0, 0), [0, 0, 0]);
  assert.deepEqual(px(s, 0, 1), [1, 1, 200]);
  assert.deepEqual(px(s, 4, 2), [5, 2, 200]);
  assert.deepEqual(px(s, 4, 3), [0, 0, 0]);
  const m = padToSquare(coords(2, 4), meanFill());
  assert.deepEqual(px(m, 0, 0), [122, 116, 104]);
  assert.deepEqual(px(m, 1, 0), [1, 1, 200]);
});

test('padImage adds constant borders', () => {
  const p = padImage(coords(2, 2), { top: 1, bottom: 0, left: 0, right: 2 }, [9, 9, 9]);
  assert.deepEqual([p.width, p.height], [4, 3]);
  assert.deepEqual(px(p, 0, 0), [9, 9, 9]);
  assert.deepEqual(px(p, 1, 2), [2, 2, 200]);
  assert.throws(() => padImage(coords(2, 2), { top: -1, bottom: 0, left: 0, right: 0 }), InputError);
});

test('toChwFloat: float32(float64(v)/255) then (x - mean32) / std32 in float32, CHW order', () => {
  const img: RgbImage = { width: 2, height: 1, data: new Uint8Array([0, 128, 255, 7, 64, 200]) };
  const chw = toChwFloat(img);
  assert.deepEqual([chw.channels, chw.height, chw.width], [3, 1, 2]);
  const f = Math.fround;
  const expect = (v: number, c: number) => f(f(f(v * (1 / 255)) - f(OPENAI_CLIP_MEAN[c])) / f(OPENAI_CLIP_STD[c]));
  assert.deepEqual([...chw.data], [expect(0, 0), expect(7, 0), expect(128, 1), expect(64, 1), expect(255, 2), expect(200, 2)]);
  const raw = toChwFloat(img, { doRescale: false, doNormalize: false });
  assert.deepEqual([...raw.data], [0, 7, 128, 64, 255, 200]);
});

test('shortestEdgeSize matches get_resize_output_image_size (truncating the long side)', () => {
  assert.deepEqual(shortestEdgeSize(480, 640, 336), [336, 448]);
  assert.deepEqual(shortestEdgeSize(640, 480, 336), [448, 336]);
  assert.deepEqual(shortestEdgeSize(333, 500, 224), [224, 336]); // 224*500/333 = 336.33
  assert.deepEqual(shortestEdgeSize(100, 100, 28), [28, 28]);
  assert.deepEqual(shortestEdgeSize(100, 1000, 28, 200), [20, 200]); // int(200*28/280) = 20
});
