import * as tf from '@tensorflow/tfjs-core';
import * as inspector from 'node:inspector';
import * as fs from 'node:fs';
import { initEngine } from '../../src/engine/backend';
import { enableNativeMatMul } from '../../src/engine/native-matmul';
import { randomArray } from '../../bench/lib';
import { IMG, MID_SHAPE, imageTokens, randomModel } from '../../bench/sweep-model';
async function main() {
  const engine = await initEngine();
  const nat = engine.nativeMatMul;
  console.log('native', nat.enabled);
  const MID = MID_SHAPE;
  const model = randomModel(MID);
  const P = imageTokens(MID);
  const ids = [1, ...Array.from({ length: P }, () => IMG), ...Array.from({ length: 19 }, (_, i) => 3 + ((i * 37) % (MID.vocab! - 4)))];
  const px = MID.vision!.imageSize;
  const pixels = tf.tensor4d(randomArray(3 * px * px, 1, 5), [1, 3, px, px]);
  const forward = () => { const out = model.forward({ inputIds: [ids], pixelValues: pixels }); out.logits!.dataSync(); out.dispose(); };
  forward();
  const sess = new inspector.Session(); sess.connect();
  const post = (m: string, p?: object) => new Promise<any>((res, rej) => sess.post(m, p ?? {}, (e, r) => (e ? rej(e) : res(r))));
  if (process.env.PROF) { await post('Profiler.enable'); await post('Profiler.setSamplingInterval', { interval: 200 }); await post('Profiler.start'); }
  const n = Number(process.env.N ?? 7);
  const ts: number[] = [];
  for (let i = 0; i < n; i++) { const t0 = performance.now(); forward(); ts.push(performance.now() - t0); }
  if (process.env.PROF) { const { profile } = await post('Profiler.stop'); fs.writeFileSync('fwd.cpuprofile', JSON.stringify(profile)); }
  ts.sort((a, b) => a - b);
  console.log('forward ms', ts.map((t) => t.toFixed(0)).join(' '), 'median', ts[n >> 1].toFixed(0), 'tensors', tf.memory().numTensors);
}
main();
