// A resident forward frees each decoder layer's intermediates as it goes (issue 20: until session 5 only
// streamed models did, and one 276-token row of the mid shapes peaked at 1.3 GB of intermediates over 1.1 GB
// of weights). The bound that keeps it: the peak above the weights does not grow with the number of layers.
// Holding every layer's intermediates would make a 12-layer model's extra peak about 6x a 2-layer one's.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import type { CausalLM } from '../../src/models/causal-lm';
import { randomIds, randomLlama } from '../../bench/lib';

const SHAPE = { vocab: 64, d: 64, heads: 4, kvHeads: 2, inter: 256 };
const T = 96;
const B = 2;

before(async () => {
  await initEngine();
});
after(() => shutdownEngine());

/** Bytes a forward allocates at its peak, above what was allocated before it (the weights). */
async function extraPeak(model: CausalLM, ids: number[][]): Promise<number> {
  const before = tf.memory().numBytes;
  const info = await tf.profile(() => {
    const out = model.forward({ inputIds: ids });
    out.logits!.dataSync();
    out.dispose();
  });
  assert.equal(tf.memory().numBytes, before, 'the forward leaves nothing behind');
  return info.peakBytes - before;
}

test('the peak memory of a resident forward above its weights does not grow with depth', async () => {
  const ids = randomIds(B, T, SHAPE.vocab, 11);
  const peaks: Record<number, number> = {};
  for (const layers of [2, 12]) {
    const model = randomLlama({ ...SHAPE, layers }, 3);
    try {
      await extraPeak(model, ids); // warm-up: first-call allocations of the backend
      peaks[layers] = await extraPeak(model, ids);
    } finally {
      model.dispose();
    }
  }
  // One layer's intermediates at these shapes: the attention scores alone are B*H*T*T floats.
  const scores = B * SHAPE.heads * T * T * 4;
  assert.ok(peaks[2] > scores, `the 2-layer peak ${peaks[2]} B covers at least one layer's scores (${scores} B)`);
  assert.ok(
    peaks[12] <= 1.25 * peaks[2],
    `12 layers peak ${peaks[12]} B above the weights, 2 layers ${peaks[2]} B: intermediates are held across layers`,
  );
});
