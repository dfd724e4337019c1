import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/backend';
import { nativeOpsInfo } from '../../src/engine/native-ops';
async function main() {
  await initEngine();
  const t = tf.randomNormal([1, 276, 16, 64]) as tf.Tensor4D;
  const time = (name: string) => { for (let i = 0; i < 3; i++) tf.transpose(t, [0, 2, 1, 3]).dispose(); const ts: number[] = []; for (let i = 0; i < 21; i++) { const t0 = performance.now(); tf.transpose(t, [0, 2, 1, 3]).dispose(); ts.push(performance.now() - t0); } ts.sort((a, b) => a - b); console.log(name, ts[10].toFixed(3)); };
  time('stock');
  nativeOpsInfo();
  time('native');
  for (let i = 0; i < 3; i++) { const p = await tf.profile(() => tf.transpose(t, [0, 2, 1, 3])); console.log(p.kernels.map((k) => [k.name, k.kernelTimeMs])); }

}
main();
