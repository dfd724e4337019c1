import { blasFreeAddon } from '../../src/engine/native-matmul';
const ad = blasFreeAddon();
const n = 276 * 2816;
const g = Float32Array.from({ length: n }, () => Math.random() * 4 - 2), u = g.slice(), o = new Float32Array(n);
for (const th of [] as number[]) for (const kind of [0]) {
  for (let i = 0; i < 5; i++) ad.activation!(kind, g, u, o, n, th);
  const t0 = performance.now(); for (let i = 0; i < 50; i++) ad.activation!(kind, g, u, o, n, th);
  console.log('threads', th, 'kind', kind, ((performance.now() - t0) / 50).toFixed(3), 'ms');
}
const S = 276, rows = 16 * 276; const x = Float32Array.from({ length: rows * S }, () => Math.random()); const ox = new Float32Array(rows * S);
for (const th of [1, 2]) { const t0 = performance.now(); for (let i = 0; i < 20; i++) ad.softmax!(x, null, ox, 1, 16, 276, S, 0, 0, 0, th); console.log('softmax threads', th, ((performance.now() - t0) / 20).toFixed(3)); }
