import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../../src/engine/backend';
async function main() {
  const e = await initEngine();
  console.log(e.nativeMatMul.library ?? e.nativeMatMul.reason, 'pool', e.poolThreads);
  const shapes: [number[], number[], boolean][] = [[[276, 1024], [1024, 2816], false], [[276, 2816], [2816, 1024], false], [[257, 768], [768, 3072], false], [[276, 1024], [1024, 32000], false], [[1, 8, 552, 64], [1, 8, 276, 64], true], [[1, 8, 552, 276], [1, 8, 276, 64], false]];
  for (const [a, b, tB] of shapes) {
    const x = tf.randomNormal(a), y = tf.randomNormal(b);
    for (let i = 0; i < 2; i++) tf.matMul(x, y, false, tB).dispose();
    const ts: number[] = [];
    for (let i = 0; i < 7; i++) { const t0 = performance.now(); tf.matMul(x, y, false, tB).dispose(); ts.push(performance.now() - t0); }
    ts.sort((p, q) => p - q);
    const M = a[a.length - 2], K = a[a.length - 1], N = tB ? b[b.length - 2] : b[b.length - 1], batch = a.slice(0, -2).reduce((p, q) => p * q, 1);
    console.log(`${a} x ${b}${tB ? 'ᵀ' : ''}: ${ts[3].toFixed(2)} ms, ${(2 * M * N * K * batch / ts[3] / 1e6).toFixed(1)} GFLOP/s`);
  }
}
main();
