import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/backend';
import { enableNativeMatMul } from '../../src/engine/native-matmul';
import { nativeLayerNorm, nativeRope, nativeOpsInfo } from '../../src/engine/native-ops';
import { rotateHalf } from '../../src/models/layers';
async function main() {
  const e = await initEngine(); enableNativeMatMul({ threads: e.threads });
  nativeOpsInfo();
  const time = (name: string, f: () => tf.Tensor) => { for (let i = 0; i < 3; i++) f().dispose(); const ts: number[] = []; for (let i = 0; i < 21; i++) { const t0 = performance.now(); f().dispose(); ts.push(performance.now() - t0); } ts.sort((a, b) => a - b); console.log(name, ts[10].toFixed(3), 'ms'); };
  const x = tf.randomNormal([1, 257, 768]); const w = tf.randomNormal([768]); const b = tf.randomNormal([768]);
  time('stock ln', () => tf.tidy(() => { const m = tf.mean(x, -1, true); const c = tf.sub(x, m); const v = tf.mean(tf.square(c), -1, true); return tf.add(tf.mul(tf.mul(c, tf.rsqrt(tf.add(v, 1e-5))), w), b); }));
  time('native ln', () => nativeLayerNorm(x, w, b, 1e-5)!);
  const q = tf.randomNormal([1, 16, 276, 64]); const cos = tf.randomNormal([1, 1, 276, 64]); const sin = tf.randomNormal([1, 1, 276, 64]);
  time('stock rope', () => tf.tidy(() => tf.mul(tf.add(tf.mul(q, cos), tf.mul(rotateHalf(q), sin)), 0.125)));
  time('native rope', () => nativeRope(q, cos, sin, 0.125)!);
  const t = tf.randomNormal([1, 276, 16, 64]) as tf.Tensor4D;
  time('transpose native', () => tf.transpose(t, [0, 2, 1, 3]));
  const t2 = tf.randomNormal([1, 276, 16, 64]) as tf.Tensor4D;
  time('transpose stock (perm 0,2,1,3 on int32)', () => tf.transpose(tf.cast(t2, 'int32'), [0, 2, 1, 3]));
  time('cast only', () => tf.cast(t2, 'int32'));
  const v = tf.randomNormal([1, 257, 36, 64]) as tf.Tensor4D;
  time('transpose native vit', () => tf.transpose(v, [0, 2, 1, 3]));
}
main();
