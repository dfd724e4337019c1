// Pixtral through the experiment layer (pre-tokenised prompts of pixtral_tiny_P, images of different processed
// sizes in one batch): the scheduled knockout sweep equals the naive one, and the logit lens reports each image
// position's patch row/column and the [IMG_BREAK]/[IMG_END] terminators as row ends.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { runExperiment } from '../../src/experiments';
import type { RawPrompts } from '../../src/experiments/sources/raw';
import { pixtralImageLayout } from '../../src/io/processors';
import { loadModelFromDir } from '../../src/models/load';
import type { Model } from '../../src/models/model';
import { FIXTURES2 } from '../fixtures/paths';
import { flat, readJson } from '../models/helpers';

const inp = readJson(path.join(FIXTURES2, 'pixtral_tiny_P', 'inputs.json'));
let model: Model;
before(async () => {
  await initEngine();
  model = loadModelFromDir(path.join(FIXTURES2, 'pixtral_tiny_P'));
});
after(() => {
  model.dispose();
  shutdownEngine();
});

function rawP(): RawPrompts {
  const ids = inp.input_ids as number[][];
  const images: RawPrompts['images'] = {};
  ids.forEach((_, i) => {
    const px = inp.pixel_values[i][0] as number[][][];
    const size = inp.image_sizes[i][0] as [number, number];
    images[`i${i}`] = { shape: [1, 3, ...size], data: flat(px), imageSize: size, layout: pixtralImageLayout(size, 7) };
  });
  return {
    format: 'hopscope-prompts',
    version: 1,
    imageTokenId: inp.image_token_index,
    entities: ids.map((_, i) => ({ key: `e${i}`, subject: `tok${20 + i}`, type: 'celebs' })),
    images,
    prompts: ids.map((r, i) => ({ entity: `e${i}`, role: 'identify' as const, modality: 'image' as const, inputIds: r.filter((_, k) => inp.attention_mask[i][k] === 1), image: `i${i}` })),
  };
}

test('Pixtral: scheduled knockout sweep equals the naive one; memory back to baseline', async () => {
  const data = rawP();
  const before = tf.memory().numTensors;
  const spec = {
    kind: 'knockout',
    version: 1,
    identifiedOnly: false,
    prompts: 'identification',
    accuracy: false,
    window: 1,
    edges: ['image->last', { name: 'patches->last', from: { kind: 'image', part: 'grid' }, to: 'last' }],
  };
  const a = await runExperiment(spec, { model, data });
  const b = await runExperiment(spec, { model, data, naive: true });
  const x = Array.from(a.table.array('pNew') as ArrayLike<number>);
  const y = Array.from(b.table.array('pNew') as ArrayLike<number>);
  assert.equal(x.length, 2 * 2 * model.numLayers);
  x.forEach((v, i) => assert.ok(Math.abs(v - y[i]) <= 1e-6 * Math.max(1e-3, Math.abs(y[i])) + 1e-9, `row ${i}: ${v} vs ${y[i]}`));
  // Knocking out the terminators too changes more than knocking out the patches alone.
  const rel = (e: string) => a.table.filter(`d => d.edges === '${e}'`).array('relChange') as number[];
  assert.notDeepEqual(rel('image->last'), rel('patches->last'));
  assert.equal(tf.memory().numTensors, before);
});

test('Pixtral: logit lens labels [IMG] positions with their patch and terminators as row ends', async () => {
  const r = await runExperiment({ kind: 'logit-lens', version: 1, prompts: 'identification', positions: 'image', topK: 1, limit: 1 }, { model, data: rawP() });
  const rows = r.table.objects() as { layer: number; position: number; gridRow: number; gridCol: number; inputToken: number }[];
  const layer0 = rows.filter((o) => o.layer === 0);
  assert.equal(layer0.length, 4 * 7); // image 0: 4 rows x (6 [IMG] + 1 terminator)
  for (const o of layer0) {
    const k = o.position - 5; // the first [IMG] of row 0 is at position 5
    assert.equal(o.gridRow, Math.floor(k / 7));
    assert.equal(o.gridCol, k % 7 === 6 ? -1 : k % 7);
    assert.equal(o.inputToken, k % 7 === 6 ? (k === 27 ? 13 : 12) : 10);
  }
});
