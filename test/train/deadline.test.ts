// The recall deadline (src/train/deadline.ts) on the shipped teaching backbone: writing A's name states from
// block 0 on is A's run (same tokens), from the final norm on is B's run (the last position no longer reads
// the name), the curve falls in between, and no tensor is left behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { loadModelWithAssets } from '../../src/experiments';
import type { Model } from '../../src/models/model';
import { loadTeachingData } from '../../src/train/data';
import { recallDeadline } from '../../src/train/deadline';

const ROOT = path.resolve(__dirname, '..', '..');
let model: Model;

before(async () => {
  await initEngine();
  model = loadModelWithAssets(path.join(ROOT, 'data', 'teaching', 'backbone')); // the early / late pair's shared backbone
});
after(() => {
  model.dispose();
  shutdownEngine();
});

test('block 0 is A’s run, the final norm is B’s run, and the share of A’s answers falls in between', () => {
  const data = loadTeachingData(path.join(ROOT, 'data', 'toyworld'));
  const base = tf.memory().numTensors;
  const r = recallDeadline(model, data, { form: 'question', every: 15, maxNewTokens: 5 });
  assert.ok(r.pairs >= 5, `${r.pairs} pairs`);
  const L = model.numLayers;
  for (const t of r.tokens) {
    assert.deepEqual(t.patched[0], t.a);
    assert.deepEqual(t.patched[L], t.b);
  }
  assert.equal(r.rows.length, L + 1);
  assert.ok(r.rows[0].a > r.rows[L].a, `A's answers ${r.rows.map((x) => x.a).join(' ')}`);
  assert.equal(tf.memory().numTensors, base);
});
