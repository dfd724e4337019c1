// Repeated sweeps keep memory flat: 20 small cross-patching sweeps (start-at-layer forwards with hooks and
// caches, as bench/ and the experiments run them) leave tf.memory().numTensors exactly where it was, and
// the scheduled sweep gives the naive sweep's logits.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import type { CausalLM } from '../../src/models/causal-lm';
import { randomIds, randomLlama } from '../../bench/lib';
import { maxAbsDiff, naiveSweep, scheduledSweep, type SweepSpec } from '../../bench/sweep-measure';

let model: CausalLM;
let spec: SweepSpec;
before(async () => {
  await initEngine();
  model = randomLlama({ vocab: 50, d: 32, layers: 4, heads: 4, kvHeads: 2, inter: 64 }, 5);
  const [source, target] = randomIds(2, 12, 50, 3);
  spec = { source, target, positions: [4, 5, 6] };
});
after(() => {
  model.dispose();
  shutdownEngine();
});

test('the scheduled sweep (start-at-layer, batched layers) gives the naive sweep logits', () => {
  const ref = naiveSweep(model, spec);
  assert.equal(ref.length, 4);
  for (const g of [1, 3, 4]) {
    const got = scheduledSweep(model, spec, g);
    assert.equal(got.length, 4);
    assert.ok(maxAbsDiff(ref, got) <= 1e-5, `group ${g}: ${maxAbsDiff(ref, got)}`);
  }
  // and patching changes something (the sweep is not a no-op)
  const clean = model.forward({ inputIds: [spec.target] });
  const last = clean.logits!.slice([0, 11, 0], [1, 1, 50]).dataSync() as Float32Array;
  clean.dispose();
  assert.ok(maxAbsDiff([ref[0]], [Float32Array.from(last)]) > 1e-4);
});

test('20 repeated sweeps leave the number of tensors unchanged', () => {
  scheduledSweep(model, spec, 2); // warm-up: kernels, first-use allocations
  const before = tf.memory().numTensors;
  for (let i = 0; i < 20; i++) {
    scheduledSweep(model, spec, i % 2 ? 1 : 4);
    naiveSweep(model, spec);
  }
  assert.equal(tf.memory().numTensors, before);
});
