import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/backend';
import { enableNativeMatMul } from '../../src/engine/native-matmul';
import { nativeMaskedSoftmax, nativeActivation, nativeRmsNorm, nativeOpsInfo } from '../../src/engine/native-ops';
async function main() {
  const e = await initEngine(); enableNativeMatMul({ threads: e.threads });
  console.log(nativeOpsInfo());
  const time = (name: string, f: () => tf.Tensor) => { for (let i = 0; i < 3; i++) f().dispose(); const ts: number[] = []; for (let i = 0; i < 15; i++) { const t0 = performance.now(); f().dispose(); ts.push(performance.now() - t0); } ts.sort((a, b) => a - b); console.log(name, ts[7].toFixed(2), 'ms'); };
  const s = tf.randomNormal([1, 16, 276, 276]); const m = tf.randomNormal([1, 1, 276, 276]);
  time('stock softmax', () => tf.softmax(tf.add(s, m), -1));
  time('native softmax', () => nativeMaskedSoftmax(s, m)!);
  const g = tf.randomNormal([276, 2816]); const u = tf.randomNormal([276, 2816]);
  time('stock silu*u', () => tf.tidy(() => tf.mul(tf.mul(g, tf.sigmoid(g)), u)));
  time('native silu*u', () => nativeActivation('silu', g, u)!);
  const x = tf.randomNormal([276, 1024]); const w = tf.randomNormal([1024]);
  time('stock rms', () => tf.tidy(() => tf.mul(w, tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-6))))));
  time('native rms', () => nativeRmsNorm(x, w, 1e-6)!);
  const q = tf.randomNormal([1, 276, 16, 64]) as tf.Tensor4D;
  time('transpose', () => tf.transpose(q, [0, 2, 1, 3]));
}
main();
