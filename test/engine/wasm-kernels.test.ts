// The wasm backend's Slice, SplitV and GatherV2 (src/engine/wasm-kernels.ts) against plain references: every rank
// 1-5, random begin/size (including -1 sizes, empty slices and whole tensors), random gathers (every axis, batchDims
// 0 and 1), float32, int32 and bool; the tensors they return are tracked and freed like any other.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
// Gradient kernels (tfjs-core alone registers none), for the gradient test below.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import fc from 'fast-check';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { copySlice } from '../../src/engine/wasm-kernels';

before(async () => {
  await initEngine({ backend: 'wasm', native: 'off' });
});
after(() => shutdownEngine());

/** The slice by definition: every output index, its input index. */
function reference(x: ArrayLike<number>, shape: number[], begin: number[], size: number[]): number[] {
  const out: number[] = [];
  const idx = new Array(shape.length).fill(0);
  const n = size.reduce((a, b) => a * b, 1);
  for (let i = 0; i < n; i++) {
    let flat = 0;
    for (let d = 0; d < shape.length; d++) flat = flat * shape[d] + begin[d] + idx[d];
    out.push(x[flat]);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < size[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

const caseArb = fc
  .array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 5 }) // tfjs refuses to slice a scalar
  .chain((shape) =>
    fc.tuple(
      fc.constant(shape),
      fc.tuple(...shape.map((n) => fc.integer({ min: 0, max: n }).chain((b) => fc.tuple(fc.constant(b), fc.integer({ min: -1, max: n - b }))))),
      fc.constantFrom('float32' as const, 'int32' as const, 'bool' as const),
    ),
  );

test('Slice on wasm equals the reference on 500 random cases (ranks 1-5, -1 sizes, empty, whole; float32, int32, bool)', () => {
  assert.equal(tf.getBackend(), 'wasm');
  const base = tf.memory().numTensors;
  fc.assert(
    fc.property(caseArb, ([shape, bs, dtype]) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const values = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? i % 3 === 0 ? 1 : 0 : dtype === 'int32' ? i * 7 - 50 : i * 0.5 - 3));
      const begin = bs.map(([b]) => b);
      // -1 means "to the end" of that dimension.
      const sizeFixed = bs.map(([b, s], d) => (s === -1 ? shape[d] - b : s));
      const x = tf.tensor(values, shape, dtype);
      const y = tf.slice(x, begin, bs.map(([, s]) => s));
      assert.deepEqual(y.shape, sizeFixed);
      assert.equal(y.dtype, dtype);
      assert.deepEqual(Array.from(y.dataSync()), reference(values, shape, begin, sizeFixed));
      tf.dispose([x, y]);
    }),
    { numRuns: 500, seed: 20261204 },
  );
  assert.equal(tf.memory().numTensors, base);
});

test('SplitV on wasm: the pieces along each axis concatenate back to the input', () => {
  const base = tf.memory().numTensors;
  const x = tf.tensor(Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => i), [2, 3, 4, 5]);
  for (let axis = 0; axis < 4; axis++) {
    const n = x.shape[axis];
    const sizes = n === 2 ? [1, 1] : [1, n - 1];
    const parts = tf.split(x, sizes, axis);
    assert.deepEqual(parts.map((p) => p.shape[axis]), sizes);
    let at = 0;
    for (const p of parts) {
      const begin = [0, 0, 0, 0];
      begin[axis] = at;
      const ref = tf.slice(x, begin, p.shape);
      assert.deepEqual(Array.from(p.dataSync()), Array.from(ref.dataSync()));
      ref.dispose();
      at += p.shape[axis];
    }
    const back = tf.concat(parts, axis);
    assert.deepEqual(Array.from(back.dataSync()), Array.from(x.dataSync()));
    tf.dispose([...parts, back]);
  }
  const even = tf.split(x, 3, 1);
  assert.deepEqual(Array.from(even[2].dataSync()), reference(x.dataSync(), [2, 3, 4, 5], [0, 2, 0, 0], [2, 1, 4, 5]));
  tf.dispose([...even, x]);
  assert.equal(tf.memory().numTensors, base);
});

test('copySlice: one contiguous run when the inner dimensions are whole, short runs element by element', () => {
  const x = Float32Array.from({ length: 4 * 16 * 6 * 8 }, (_, i) => i);
  for (const [begin, size] of [
    [[1, 2, 0, 0], [1, 2, 6, 8]], // contiguous: one run of 96
    [[0, 3, 1, 2], [4, 5, 4, 3]], // runs of 3
    [[2, 0, 0, 0], [2, 16, 6, 8]], // the tail half
  ] as [number[], number[]][]) {
    const out = new Float32Array(size.reduce((a, b) => a * b, 1));
    copySlice(x, [4, 16, 6, 8], begin, size, out);
    assert.deepEqual(Array.from(out), reference(x, [4, 16, 6, 8], [...begin], [...size]));
  }
});

test('string tensors, which the heap does not hold, are sliced by the stock kernel (tf.split refuses them before any kernel)', () => {
  const base = tf.memory().numTensors;
  const x = tf.tensor(['a', 'b', 'c', 'd'], [2, 2], 'string');
  const y = tf.slice(x, [1, 0], [1, 2]);
  assert.deepEqual(y.arraySync(), [['c', 'd']]);
  const z = tf.slice(x, [0, 1], [2, 1]);
  assert.deepEqual(z.arraySync(), [['b'], ['d']]);
  tf.dispose([x, y, z]);
  assert.equal(tf.memory().numTensors, base);
});

const gatherArb = fc
  .array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 })
  .chain((shape) =>
    fc.tuple(
      fc.constant(shape),
      fc.integer({ min: 0, max: shape.length - 1 }),
      fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 2 }),
      fc.constantFrom('float32' as const, 'int32' as const, 'bool' as const),
      fc.integer({ min: 0, max: 1000 }),
      fc.boolean(),
    ),
  );

test('GatherV2 on wasm equals the definition on 300 random cases (ranks 1-4, every axis, index ranks 0-2 with repeats, batchDims 0 and 1; float32, int32, bool)', () => {
  const base = tf.memory().numTensors;
  fc.assert(
    fc.property(gatherArb, ([shape, axis, idxRest, dtype, seed, batched]) => {
      // batchDims 1 needs a gathered axis after the first and indices led by the batch dimension.
      const bd = batched && axis >= 1 ? 1 : 0;
      const idxShape = bd ? [shape[0], ...idxRest] : idxRest;
      const n = shape.reduce((a, b) => a * b, 1);
      const values = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? (i % 3 === 0 ? 1 : 0) : dtype === 'int32' ? i * 7 - 50 : i * 0.5 - 3));
      const count = idxShape.reduce((a, b) => a * b, 1);
      const idx = Array.from({ length: count }, (_, i) => (seed + i * 13) % shape[axis]);
      const x = tf.tensor(values, shape, dtype);
      const ind = tf.tensor(idx, idxShape, 'int32');
      const y = tf.gather(x, ind, axis, bd);
      const B = bd ? shape[0] : 1;
      const outer = shape.slice(bd, axis).reduce((a, b) => a * b, 1);
      const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
      const per = count / B;
      const want: number[] = [];
      for (let b = 0; b < B; b++)
        for (let o = 0; o < outer; o++)
          for (let j = 0; j < per; j++) for (let k = 0; k < inner; k++) want.push(values[((b * outer + o) * shape[axis] + idx[b * per + j]) * inner + k]);
      assert.deepEqual(y.shape, [...shape.slice(0, axis), ...idxShape.slice(bd), ...shape.slice(axis + 1)]);
      assert.equal(y.dtype, dtype);
      assert.deepEqual(Array.from(y.dataSync()), want);
      tf.dispose([x, ind, y]);
    }),
    { numRuns: 300, seed: 20261205 },
  );
  assert.equal(tf.memory().numTensors, base);
});

test('GatherV2 on wasm: an index outside the gathered axis is an error naming it, not a read of stray memory; batchDims gathers per row', () => {
  const base = tf.memory().numTensors;
  const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
  for (const bad of [3, -1]) {
    const ind = tf.tensor1d([0, bad], 'int32');
    assert.throws(() => tf.gather(x, ind), new RegExp(`index value ${bad} is not in \\[0, 2\\]`));
    ind.dispose();
  }
  // batchDims 1: row b gathers with its own indices (the stock wasm kernel gave [2, 1, 3, 4, 2, 2]).
  const ids = tf.tensor2d([1, 0, 0, 0, 1, 1], [3, 2], 'int32');
  const y = tf.gather(x, ids, 1, 1);
  assert.deepEqual(Array.from(y.dataSync()), [2, 1, 3, 3, 6, 6]);
  tf.dispose([x, ids, y]);
  assert.equal(tf.memory().numTensors, base);
});

test('Identity and same-dtype Cast on wasm share the buffer: no copy, values intact after either tensor is freed, the buffer freed with the last', () => {
  assert.equal(tf.getBackend(), 'wasm');
  const base = tf.memory();
  const x = tf.tensor2d([1.5, -2, 3, 4.25, 0, 7], [2, 3]);
  const buffers = tf.memory().numDataBuffers;
  const y = tf.clone(x);
  const z = tf.cast(x, 'float32');
  // Three tensors on one buffer (tfjs counts numBytes per tensor, so only the buffer count shows the sharing).
  assert.equal(tf.memory().numDataBuffers, buffers);
  assert.equal(tf.memory().numTensors, base.numTensors + 3);
  x.dispose();
  assert.deepEqual(Array.from(y.dataSync()), [1.5, -2, 3, 4.25, 0, 7], 'the clone reads its values after the original is freed');
  y.dispose();
  assert.deepEqual(z.shape, [2, 3]);
  assert.deepEqual(Array.from(z.dataSync()), [1.5, -2, 3, 4.25, 0, 7]);
  z.dispose();
  assert.equal(tf.memory().numDataBuffers, base.numDataBuffers);
  assert.equal(tf.memory().numBytes, base.numBytes);
  // A cast to another dtype still converts into a buffer of its own.
  const i = tf.tensor1d([1, 2, 3], 'int32');
  const f = tf.cast(i, 'float32');
  assert.equal(f.dtype, 'float32');
  assert.deepEqual(Array.from(f.dataSync()), [1, 2, 3]);
  assert.equal(tf.memory().numDataBuffers, base.numDataBuffers + 2);
  tf.dispose([i, f]);
  assert.equal(tf.memory().numTensors, base.numTensors);
  assert.equal(tf.memory().numBytes, base.numBytes);
});

test('gradients through ops whose saved tensors are clones (shared buffers) equal the analytic ones, and free every tensor', () => {
  const base = tf.memory().numTensors;
  const x = tf.tensor1d([0.5, -1, 2]);
  const w = tf.tensor1d([3, 0.25, -2]);
  // f = Σ exp(x·w) · x², df/dx = exp(x·w)·(w·x² + 2x); exp and mul save their inputs and outputs for the backward pass.
  const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.exp(tf.mul(a, w)), tf.square(a))))(x);
  const xs = [0.5, -1, 2];
  const ws = [3, 0.25, -2];
  const want = xs.map((v, k) => Math.exp(v * ws[k]) * (ws[k] * v * v + 2 * v));
  Array.from(g.dataSync()).forEach((v, k) => assert.ok(Math.abs(v - want[k]) <= 1e-5 * Math.max(1, Math.abs(want[k])), `${v} vs ${want[k]}`));
  tf.dispose([x, w, g]);
  assert.equal(tf.memory().numTensors, base);
});
