// filledTensor: a weight written once into the backend's storage (the wasm heap) equals tf.tensor of the same
// values on every backend, and leaves no tensor or heap byte behind when it is disposed or its fill throws.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { filledTensor } from '../../src/engine/filled';
import { memorySource, readTensor } from '../../src/models/weights';

after(() => shutdownEngine());

for (const backend of ['wasm', 'cpu'] as const) {
  test(`filledTensor on ${backend}: values, shape, dtype; memory back to baseline; a throwing fill allocates nothing`, async () => {
    await initEngine({ backend, native: 'off' });
    assert.equal(tf.getBackend(), backend);
    const before = tf.memory();
    const values = Float32Array.from({ length: 6 * 7 }, (_, i) => Math.sin(i) * 3);
    const t = filledTensor([6, 7], (dst) => {
      assert.equal(dst.length, 42);
      dst.set(values);
    });
    assert.deepEqual(t.shape, [6, 7]);
    assert.equal(t.dtype, 'float32');
    assert.deepEqual(await t.data(), values);
    // It takes part in ops like any tensor: x·t against the same product from tf.tensor.
    const x = tf.randomNormal([3, 6], 0, 1, 'float32', 1);
    const ref = tf.tensor(values, [6, 7]);
    const a = tf.matMul(x, t);
    const b = tf.matMul(x, ref);
    assert.deepEqual(await a.data(), await b.data());
    tf.dispose([t, x, ref, a, b]);
    assert.equal(tf.memory().numTensors, before.numTensors);
    assert.equal(tf.memory().numBytes, before.numBytes);
    assert.throws(() => filledTensor([4, 4], () => { throw new Error('disk gone'); }), /disk gone/);
    assert.equal(tf.memory().numTensors, before.numTensors);
    assert.equal(tf.memory().numBytes, before.numBytes);
  });
}

test('readTensor fills the tensor in place, transposed or not, from a source that takes `into` or ignores it', async () => {
  await initEngine({ backend: 'wasm', native: 'off' });
  const data = Float32Array.from({ length: 12 }, (_, i) => i + 1);
  const src = memorySource('mem', new Map([['w', { shape: [3, 4], data }]]));
  // A source written before `into` existed: returns its own array and never writes the destination.
  const old = { ...src, f32: (n: string, transpose?: boolean) => src.f32(n, transpose) };
  const base = tf.memory().numTensors;
  for (const s of [src, old]) {
    const plain = readTensor(s, 'w');
    const tr = readTensor(s, 'w', true);
    assert.deepEqual(plain.shape, [3, 4]);
    assert.deepEqual(await plain.data(), data);
    assert.deepEqual(tr.shape, [4, 3]);
    assert.deepEqual(Array.from(await tr.data()), [1, 5, 9, 2, 6, 10, 3, 7, 11, 4, 8, 12]);
    tf.dispose([plain, tr]);
  }
  assert.equal(tf.memory().numTensors, base);
});
