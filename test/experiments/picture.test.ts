// The picture under the logit-lens and attribution views' patch grid (issue 16): the model's own pixels, each
// patch mapped to the view position that carries it; null when there is no whole grid to draw.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { PICTURE_MAX_SIDE, viewPicture } from '../../src/experiments/picture';
import type { PromptCase, PromptSource } from '../../src/experiments/source';
import { loadDataset, loadModel, runExperiment } from '../../src/index';
import { validateViewState } from '../../src/report/views';
import { viewFromResult } from '../../src/experiments/view-of';
import type { Model } from '../../src/models/model';

before(async () => {
  await initEngine({ backend: 'cpu' });
});
after(() => shutdownEngine());

/** A prompt: 2 text tokens, an image span of `rows`×`cols` grid tokens (plus `cls`), then 3 text tokens. */
function promptCase(rows: number, cols: number, cls = 0, image: string | null = 'img.png'): PromptCase {
  const n = rows * cols + cls;
  return {
    id: 'p',
    entity: { key: 'e', subject: 'E', type: 't' } as PromptCase['entity'],
    role: 'identify',
    modality: 'image',
    inputIds: Array.from({ length: 5 + n }, (_, i) => i),
    spans: {
      length: 5 + n,
      images: image ? [{ image: 0, start: 2, length: n, layout: { kind: 'grid', rows, cols, cls } }] : [],
      question: null,
      query: null,
      subject: null,
      assistant: null,
      answerPrefix: null,
      last: 4 + n,
    },
    image,
  };
}

/** A source whose pixels are a CHW gradient, normalised as CLIP's processor would leave them. */
function source(h: number, w: number): PromptSource {
  const data = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++) for (let i = 0; i < h * w; i++) data[c * h * w + i] = ((i % w) / (w - 1) - 0.48) / 0.27 + c * 0.1;
  return { pixels: async () => ({ data, shape: [1, 3, h, w] }) } as unknown as PromptSource;
}

test('each patch of the grid maps to the view position that carries it; the PNG is the model’s pixels', async () => {
  const c = promptCase(2, 3, 1);
  // The view shows every position, in prompt order; the CLS token (position 2) is not a patch.
  const all = c.inputIds.map((_, p) => p);
  const pic = await viewPicture(source(12, 18), c, all);
  assert.ok(pic);
  assert.equal(pic.gridRows, 2);
  assert.equal(pic.gridCols, 3);
  assert.deepEqual(pic.positions, [3, 4, 5, 6, 7, 8]);
  const png = Buffer.from(String(pic.png), 'base64');
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height, pic.width, pic.height], [18, 12, 18, 12]);
  // The stretch maps the smallest value to 0 and the largest to 255; a horizontal gradient stays one.
  assert.equal(data[0], 0, 'darkest pixel (red, left column)');
  assert.equal(Math.max(...data), 255);
  assert.ok(data[(0 * 18 + 17) * 3] > data[(0 * 18 + 1) * 3], 'left to right, brighter');

  // A view of a subset in its own order: indices into that order.
  const some = [9, 8, 7, 6, 5, 4, 3, 0];
  assert.deepEqual((await viewPicture(source(12, 18), c, some))?.positions, [6, 5, 4, 3, 2, 1]);
});

test('no picture for a text prompt, a view missing a patch, or pixels that are not one RGB image', async () => {
  assert.equal(await viewPicture(source(8, 8), promptCase(2, 2, 0, null), [0, 1, 2]), null);
  const c = promptCase(2, 2);
  assert.equal(await viewPicture(source(8, 8), c, [2, 3, 4]), null, 'patch (1, 1) at position 5 is not in the view');
  const gray = { pixels: async () => ({ data: new Float32Array(64), shape: [1, 1, 8, 8] }) } as unknown as PromptSource;
  assert.equal(await viewPicture(gray, c, [2, 3, 4, 5]), null);
});

test('a large picture is scaled down to PICTURE_MAX_SIDE on its longest side', async () => {
  const pic = await viewPicture(source(PICTURE_MAX_SIDE * 2, PICTURE_MAX_SIDE), promptCase(2, 2), [2, 3, 4, 5]);
  assert.deepEqual([pic?.width, pic?.height], [PICTURE_MAX_SIDE / 2, PICTURE_MAX_SIDE]);
});

test('logit lens and attribution on the teaching model carry the picture; the views validate', async () => {
  const model: Model = await loadModel('teaching');
  const data = await loadDataset('data/toyworld');
  try {
    const lens = await runExperiment({ kind: 'logit-lens', version: 1, limit: 1, positions: 'image' } as never, { model, data } as never);
    const v = viewFromResult(lens);
    const checked = validateViewState(v);
    assert.ok(checked.ok, JSON.stringify(checked));
    const d = v.data as { positions: { label: string }[]; image: { gridRows: number; gridCols: number; positions: number[] } };
    assert.equal(d.image.gridRows * d.image.gridCols, 16);
    d.image.positions.forEach((p, i) => assert.equal(d.positions[p].label, `img ${Math.floor(i / d.image.gridCols)},${i % d.image.gridCols}`));

    const last = await runExperiment({ kind: 'logit-lens', version: 1, limit: 1, positions: 'last' } as never, { model, data } as never);
    assert.equal((viewFromResult(last).data as { image: unknown }).image, null, 'no image position in the view: no picture');

    const attr = await runExperiment({ kind: 'attribution', version: 1, limit: 2 } as never, { model, data } as never);
    const va = viewFromResult(attr);
    assert.ok(validateViewState(va).ok);
    assert.equal((va.data as { image: { gridRows: number } }).image.gridRows, 4);
  } finally {
    model.dispose();
  }
});
