// The fused native kernels (src/engine/native-ops.ts) against the stock kernels' composites, op by op, on both
// backends they serve: shapes, broadcast masks, -Infinity entries, inputs produced by slices and transposes, the
// cases they decline, and the gradient tape (under which they must step aside). Skipped, saying why, only where
// the addon is not built (a machine without g++); where it is built they must be on.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { nativeAddonPath } from '../../src/engine/native-matmul';
import { nativeLayerNorm, nativeMaskedSoftmax, nativeOpsInfo, nativeRmsNorm, nativeRope, softmaxGeometry } from '../../src/engine/native-ops';
import { applyRope, layerNorm, rmsNorm, rotateHalf } from '../../src/models/layers';

const REPO = path.resolve(__dirname, '..', '..');
const built = fs.existsSync(nativeAddonPath());
const off = /^(off|0)$/i.test(process.env.HOPSCOPE_NATIVE_MATMUL ?? '');
const skip = !built ? `the native addon is not built (${nativeAddonPath()}; npm run build:native)` : off ? 'HOPSCOPE_NATIVE_MATMUL=off' : false;

let seed = 1;
function rand(shape: number[], scale = 2): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Float32Array.from({ length: n }, () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * scale);
  return tf.tensor(v, shape);
}

/** |a - b| <= tol * max(1, |b|) everywhere; NaN only where both are NaN. */
function close(a: tf.Tensor, b: tf.Tensor, tol = 1e-5, what = ''): void {
  assert.deepEqual(a.shape, b.shape, `${what}: shapes`);
  const x = a.dataSync();
  const y = b.dataSync();
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(y[i])) assert.ok(Number.isNaN(x[i]), `${what}: [${i}] is ${x[i]}, the stock kernels give NaN`);
    else assert.ok(Math.abs(x[i] - y[i]) <= tol * Math.max(1, Math.abs(y[i])), `${what}: [${i}] is ${x[i]}, the stock kernels give ${y[i]}`);
  }
}

const stock = {
  rms: (x: tf.Tensor, w: tf.Tensor, eps: number) => tf.mul(w, tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps)))),
  ln: (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, eps: number) => {
    const c = tf.sub(x, tf.mean(x, -1, true));
    return tf.add(tf.mul(tf.mul(c, tf.rsqrt(tf.add(tf.mean(tf.square(c), -1, true), eps))), w), b);
  },
  rope: (x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, scale: number) => tf.mul(tf.add(tf.mul(x, cos), tf.mul(rotateHalf(x), sin)), scale),
  softmax: (x: tf.Tensor, m?: tf.Tensor) => tf.softmax(m ? tf.add(x, m) : x, -1),
};

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`native ops on ${backend}`, { skip }, () => {
    before(async () => {
      await initEngine({ backend });
      assert.equal(nativeOpsInfo().enabled, true, `the addon is built, so the fused kernels must be on: ${nativeOpsInfo().reason}`);
    });
    after(() => shutdownEngine());

    test('RMSNorm and LayerNorm match the composites at every rank, with rows of any width', () => {
      for (const shape of [[7], [3, 5], [2, 9, 64], [1, 3, 4, 1024]]) {
        const d = shape[shape.length - 1];
        tf.tidy(() => {
          const [x, w, b] = [rand(shape, 6), rand([d]), rand([d])];
          close(nativeRmsNorm(x, w, 1e-6)!, stock.rms(x, w, 1e-6), 1e-5, `rms ${shape}`);
          close(nativeLayerNorm(x, w, b, 1e-5)!, stock.ln(x, w, b, 1e-5), 1e-5, `ln ${shape}`);
        });
      }
      // A row of constants: LayerNorm's variance is 0 and eps alone keeps it finite.
      tf.tidy(() => close(nativeLayerNorm(tf.fill([2, 8], 3), tf.ones([8]), tf.zeros([8]), 1e-5)!, stock.ln(tf.fill([2, 8], 3), tf.ones([8]), tf.zeros([8]), 1e-5)));
    });

    test('RoPE matches x·cos + rotate_half(x)·sin, scaled, with tables shared by the batch or per row', () => {
      for (const [B, H, T, hd, perBatch] of [[1, 2, 5, 8, false], [3, 4, 6, 16, true], [2, 3, 1, 64, false]] as const) {
        tf.tidy(() => {
          // x comes out of a transpose and a slice, as the attention's queries do.
          const x = tf.transpose(rand([B, T + 1, H, hd]), [0, 2, 1, 3]).slice([0, 0, 1, 0], [B, H, T, hd]);
          const [cos, sin] = [rand([perBatch ? B : 1, 1, T, hd]), rand([perBatch ? B : 1, 1, T, hd])];
          close(nativeRope(x, cos, sin, 0.125)!, stock.rope(x, cos, sin, 0.125), 1e-6, `rope ${[B, H, T, hd]}`);
          close(nativeRope(x, cos, sin, 1)!, applyRope(x, tf.clone(cos), tf.clone(sin)), 1e-6, 'rope through layers');
        });
      }
    });

    test('masked softmax matches add + softmax for every mask broadcast, -Infinity entries and fully masked rows', () => {
      const cases: [number[], number[] | null][] = [
        [[2, 3, 4, 9], [2, 1, 4, 9]], // decoder: [B, 1, T, S]
        [[2, 3, 4, 9], [1, 1, 4, 9]],
        [[2, 3, 4, 9], [2, 3, 4, 9]], // knockout's per-head mask
        [[2, 3, 1, 9], [2, 1, 1, 9]], // last query only
        [[3, 5, 7], [5, 7]], // per-head loop: [nRep, T, S] with [T, S]
        [[4, 6], null],
        [[2, 2, 2, 3, 5], [2, 2, 2, 3, 5]], // rank 5, full mask
        [[1, 16, 40, 300], [1, 1, 40, 300]],
      ];
      for (const [xs, ms] of cases)
        tf.tidy(() => {
          const x = rand(xs, 20);
          let m: tf.Tensor | undefined;
          if (ms) {
            // A causal-style mask: -1e30 and -Infinity at some entries, never a whole row here.
            const v = rand(ms, 4).dataSync().slice();
            for (let i = 0; i < v.length; i++) if (i % ms[ms.length - 1] > 0 && i % 3 === 0) v[i] = i % 2 ? -1e30 : -Infinity;
            m = tf.tensor(v, ms);
          }
          close(nativeMaskedSoftmax(x, m)!, stock.softmax(x, m), 1e-6, `softmax ${xs} + ${ms}`);
        });
      tf.tidy(() => {
        const x = rand([2, 4]);
        const m = tf.tensor([[0, 0, 0, 0], [-Infinity, -Infinity, -Infinity, -Infinity]]);
        const y = nativeMaskedSoftmax(x, m)!.dataSync();
        close(nativeMaskedSoftmax(x, m)!, stock.softmax(x, m), 1e-6, 'fully masked row');
        assert.ok(Array.from(y.slice(4)).every(Number.isNaN), 'a fully masked row is NaN, as on the stock path');
        // A blocked entry weighs exactly nothing.
        const z = nativeMaskedSoftmax(tf.tensor([[1, 2, 3]]), tf.tensor([[0, -1e30, 0]]))!.dataSync();
        assert.equal(z[1], 0);
      });
      assert.deepEqual(softmaxGeometry([2, 3, 4, 9], [2, 1, 4, 9]), { d: [2, 3, 4], m: [36, 0, 9] });
      assert.deepEqual(softmaxGeometry([3, 5, 7], [5, 7]), { d: [1, 3, 5], m: [0, 0, 7] });
    });

    test('the [0, 2, 1, 3] transpose is the stock one, bit for bit, and other permutations and dtypes still work', () => {
      tf.tidy(() => {
        const x = rand([2, 30, 12, 64]) as tf.Tensor4D; // above the native threshold
        const t = tf.transpose(x, [0, 2, 1, 3]);
        const ref = x.arraySync();
        const got = t.arraySync() as number[][][][];
        for (const [a, b, c, d] of [[0, 0, 0, 0], [1, 11, 29, 63], [1, 3, 17, 5]]) assert.equal(got[a][b][c][d], ref[a][c][b][d]);
        assert.deepEqual(tf.transpose(t, [0, 2, 1, 3]).dataSync(), x.dataSync());
        const xi = tf.cast(x, 'int32') as tf.Tensor4D;
        assert.deepEqual(tf.transpose(xi, [0, 2, 1, 3]).dataSync(), tf.cast(t, 'int32').dataSync());
        assert.deepEqual(tf.transpose(x, [0, 1, 3, 2]).shape, [2, 30, 64, 12]);
      });
    });

    test('they decline what they do not take, and step aside under a gradient tape', () => {
      tf.tidy(() => {
        const x = rand([2, 4, 8]);
        assert.equal(nativeRmsNorm(x, rand([4]), 1e-6), null, 'weight of the wrong width');
        assert.equal(nativeRope(rand([4, 3, 8]), rand([4, 1, 8]), rand([4, 1, 8]), 1), null, 'rank 3 (Pixtral): composite');
        assert.equal(nativeMaskedSoftmax(x, rand([2, 4, 1])), null, 'a mask broadcast along the last axis');
        assert.equal(nativeMaskedSoftmax(x, rand([3, 4, 8])), null, 'a mask that does not broadcast');
        assert.equal(nativeMaskedSoftmax(tf.cast(x, 'int32')), null, 'int32');
        const w = rand([8]);
        let inside: tf.Tensor | null = tf.scalar(0);
        const g = tf.grad((t: tf.Tensor) => {
          inside = nativeRmsNorm(t, w, 1e-6);
          return tf.sum(rmsNorm(t, w, 1e-6));
        })(x);
        assert.equal(inside, null, 'no fused kernel while a tape records');
        const ref = tf.grad((t: tf.Tensor) => tf.sum(stock.rms(t, w, 1e-6)))(x);
        close(g, ref, 1e-6, 'gradient through rmsNorm');
        close(layerNorm(x, w, w, 1e-5), stock.ln(x, w, w, 1e-5), 1e-5, 'layerNorm outside the tape');
      });
    });

    test('no tensor is left behind', () => {
      const x = rand([2, 3, 4, 16]);
      const m = rand([2, 1, 4, 16]);
      const w = rand([16]);
      const base = tf.memory().numTensors;
      for (let i = 0; i < 3; i++)
        tf.tidy(() => {
          nativeRmsNorm(x, w, 1e-6);
          nativeLayerNorm(x, w, w, 1e-6);
          nativeMaskedSoftmax(x, m);
          nativeRope(x, rand([1, 1, 4, 16]), rand([1, 1, 4, 16]), 0.5);
          tf.transpose(x, [0, 2, 1, 3]);
        });
      assert.equal(tf.memory().numTensors, base);
      tf.dispose([x, m, w]);
    });
  });
}

test('with the native path turned off, every op runs the stock composite, and a model forward gives the same numbers', { skip }, () => {
  // One process per path: the same small decoder forward, its logits printed.
  const script = `
    const tf = require('@tensorflow/tfjs-core');
    const { initEngine } = require('./src/engine/backend');
    const { nativeOpsInfo } = require('./src/engine/native-ops');
    const { rmsNorm, layerNorm, applyRope, maskedSoftmax } = require('./src/models/layers');
    initEngine().then(() => {
      let s = 3;
      const r = (shape) => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 4), shape);
      const x = r([2, 3, 6, 16]), w = r([16]), cos = r([1, 1, 6, 16]), sin = r([1, 1, 6, 16]), m = r([2, 1, 6, 16]);
      const y = maskedSoftmax(applyRope(layerNorm(rmsNorm(x, w, 1e-6), w, w, 1e-5), cos, sin, 0.25).transpose([0, 2, 1, 3]).transpose([0, 2, 1, 3]), m);
      console.log(JSON.stringify({ info: nativeOpsInfo(), y: Array.from(y.dataSync()) }));
    });`;
  const run = (env: Record<string, string>) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: REPO, encoding: 'utf8', env: { ...process.env, ...env } });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { info: { enabled: boolean; reason?: string }; y: number[] };
  };
  const stockRun = run({ HOPSCOPE_NATIVE_MATMUL: 'off' });
  const nativeRun = run({ HOPSCOPE_NATIVE_MATMUL: 'auto' });
  assert.deepEqual(stockRun.info, { enabled: false, reason: 'turned off', backends: [] });
  assert.equal(nativeRun.info.enabled, true);
  assert.equal(nativeRun.y.length, 2 * 3 * 6 * 16);
  for (let i = 0; i < nativeRun.y.length; i++) assert.ok(Math.abs(nativeRun.y[i] - stockRun.y[i]) <= 1e-6, `[${i}]: native ${nativeRun.y[i]}, stock ${stockRun.y[i]}`);
});

test('the stock Transpose under the override still works after the wasm backend is removed and started again', { skip }, async () => {
  // Regression: the override once dropped the stock kernel's setupFunc, and the next wasm backend aborted in it.
  await initEngine({ backend: 'wasm' });
  nativeOpsInfo();
  shutdownEngine();
  await initEngine({ backend: 'wasm' });
  try {
    const x = tf.tensor3d([1, 2, 3, 4, 5, 6], [1, 2, 3], 'int32');
    assert.deepEqual(Array.from(tf.transpose(x, [2, 1, 0]).dataSync()), [1, 4, 2, 5, 3, 6]);
    const y = tf.tensor4d(Float32Array.from({ length: 24 }, (_, i) => i), [1, 2, 3, 4]);
    assert.deepEqual(Array.from(tf.transpose(y, [0, 2, 1, 3]).dataSync().slice(0, 8)), [0, 1, 2, 3, 12, 13, 14, 15]);
  } finally {
    shutdownEngine();
  }
});
