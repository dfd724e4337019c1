// The other families through the experiment layer: LLaVA-NeXT (anyres crops, image sizes; start-at-position
// sweeps) and Qwen2-VL (flattened patches, M-RoPE; start-at-layer sweeps through the model): image
// preparation matches the HF processor, and scheduled knockout sweeps equal naive ones.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { runExperiment } from '../../src/experiments';
import { imagePrepFor } from '../../src/experiments/assets';
import type { RawPrompts } from '../../src/experiments/sources/raw';
import { rgbFromNested } from '../../src/io/image';
import type { Model } from '../../src/models/model';
import { fixtureJson, loadFixture } from './fixture-data';

let next: Model;
let qwen: Model;
before(async () => {
  await initEngine();
  next = loadFixture('llava_next_tiny_E');
  qwen = loadFixture('qwen2vl_tiny_D');
});
after(() => {
  next.dispose();
  qwen.dispose();
  shutdownEngine();
});

test('LLaVA-NeXT image preparation reproduces the HF processor and its token counts', () => {
  const inp = fixtureJson('llava_next_tiny_E', 'inputs.json');
  const prep = imagePrepFor(next);
  (inp.raw_images_uint8_hwc as number[][][][]).forEach((raw, i) => {
    const p = prep.prepare(rgbFromNested(raw));
    assert.equal(p.numTokens, inp.num_image_tokens_per_image[i]);
    const want = (inp.pixel_values[i] as number[][][][]).slice(0, p.pixels.shape[1]).flat(3);
    let d = 0;
    want.forEach((v, k) => (d = Math.max(d, Math.abs(v - p.pixels.data[k]))));
    assert.ok(d < 1e-5, `image ${i}: max |diff| ${d}`);
  });
});

function rawFrom(model: 'E' | 'D'): RawPrompts {
  if (model === 'E') {
    const inp = fixtureJson('llava_next_tiny_E', 'inputs.json');
    const ids = inp.input_ids as number[][];
    const mask = inp.attention_mask as number[][];
    return {
      format: 'hopscope-prompts',
      version: 1,
      imageTokenId: 299,
      entities: ids.map((_, i) => ({ key: `e${i}`, subject: `tok${10 + i}`, type: 'celebs' })),
      images: Object.fromEntries(
        ids.map((_, i) => {
          const crops = (inp.pixel_values[i] as number[][][][]).length;
          return [`i${i}`, { shape: [1, crops, 3, 28, 28], data: (inp.pixel_values[i] as number[][][][]).flat(3), imageSize: inp.image_sizes[i] }];
        }),
      ),
      prompts: ids.map((row, i) => ({ entity: `e${i}`, role: 'identify' as const, modality: 'image' as const, inputIds: row.filter((_, k) => mask[i][k] === 1), image: `i${i}` })),
    };
  }
  const inp = fixtureJson('qwen2vl_tiny_D', 'inputs.json');
  const ids = inp.input_ids as number[][];
  const thw = inp.image_grid_thw as [number, number, number][];
  let row = 0;
  const images: RawPrompts['images'] = {};
  thw.forEach((g, i) => {
    const n = g[0] * g[1] * g[2];
    images[`i${i}`] = { shape: [n, 96], data: (inp.pixel_values as number[][]).slice(row, row + n).flat(), gridThw: g };
    row += n;
  });
  return {
    format: 'hopscope-prompts',
    version: 1,
    imageTokenId: inp.token_ids.image,
    entities: ids.map((_, i) => ({ key: `e${i}`, subject: `tok${10 + i}`, type: 'celebs' })),
    images,
    prompts: ids.map((r, i) => ({ entity: `e${i}`, role: 'identify' as const, modality: 'image' as const, inputIds: r.filter((_, k) => inp.attention_mask[i][k] === 1), image: `i${i}` })),
  };
}

for (const [name, which] of [['LLaVA-NeXT', 'E'], ['Qwen2-VL', 'D']] as const) {
  test(`${name}: scheduled knockout sweep equals the naive one`, async () => {
    const model = which === 'E' ? next : qwen;
    const data = rawFrom(which);
    const before = tf.memory().numTensors;
    const spec = { kind: 'knockout', version: 1, identifiedOnly: false, prompts: 'identification', accuracy: false, window: 1, edges: ['image->last', 'last->last'] };
    const a = await runExperiment(spec, { model, data });
    const b = await runExperiment(spec, { model, data, naive: true });
    const x = Array.from(a.table.array('pNew') as ArrayLike<number>);
    const y = Array.from(b.table.array('pNew') as ArrayLike<number>);
    assert.equal(x.length, 2 * 2 * model.numLayers);
    x.forEach((v, i) => assert.ok(Math.abs(v - y[i]) <= 1e-6 * Math.max(1e-3, Math.abs(y[i])) + 1e-9, `row ${i}: ${v} vs ${y[i]}`));
    assert.equal(tf.memory().numTensors, before);
  });
}
