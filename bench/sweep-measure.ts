// A full cross-patching sweep (source residual at positions P injected into the target run at every layer,
// last-position logits read) timed two ways with the core API only:
//   naive:     one cached source forward, then one full target forward per layer with a resid_pre hook;
//   scheduled: cached source and clean target forwards, then start-at-layer forwards
//              (`{startLayer, startResid, hooks}`) with `group` consecutive layers stacked as batch rows.
// Used when bench/sweep.ts (the experiments' own sweep) is absent; the two give the same logits.
import * as tf from '@tensorflow/tfjs-core';
import type { Model } from '../src/models/model';

export interface SweepSpec {
  source: number[];
  target: number[];
  /** Token positions patched (the entity span). */
  positions: number[];
}

function pre(l: number): string {
  return `lm.blocks.${l}.resid_pre`;
}

/** Replaces rows `rows` (all when absent) at `positions` of v [B,T,D] with src [1,T,D]. */
function patchRows(v: tf.Tensor, src: tf.Tensor, positions: number[], rows?: number[]): tf.Tensor {
  const [B, T] = v.shape as number[];
  const m = new Float32Array(B * T);
  for (let b = 0; b < B; b++) if (!rows || rows.includes(b)) for (const p of positions) m[b * T + p] = 1;
  const mask = tf.tensor3d(m, [B, T, 1]);
  return tf.add(tf.mul(v, tf.sub(1, mask)), tf.mul(src, mask));
}

function lastLogits(logits: tf.Tensor): Float32Array[] {
  const [B, T, V] = logits.shape as number[];
  const last = logits.slice([0, T - 1, 0], [B, 1, V]);
  const all = last.dataSync() as Float32Array;
  last.dispose();
  return Array.from({ length: B }, (_, b) => all.slice(b * V, (b + 1) * V));
}

/** Last-position logits of the target with the source patched in at each layer (one entry per layer). */
export function naiveSweep(model: Model, s: SweepSpec): Float32Array[] {
  const L = model.numLayers;
  const src = model.forward({ inputIds: [s.source] }, { cache: Array.from({ length: L }, (_, l) => pre(l)), logits: 'last' });
  const out: Float32Array[] = [];
  try {
    for (let l = 0; l < L; l++) {
      const r = model.forward({ inputIds: [s.target] }, { hooks: { [pre(l)]: (v) => patchRows(v, src.cache.get(pre(l))!, s.positions) }, logits: 'last' });
      out.push(lastLogits(r.logits!)[0]);
      r.dispose();
    }
  } finally {
    src.dispose();
  }
  return out;
}

export function scheduledSweep(model: Model, s: SweepSpec, group: number): Float32Array[] {
  const L = model.numLayers;
  const names = Array.from({ length: L }, (_, l) => pre(l));
  // The clean runs are read for their caches only, and the sweep for its last position: the LM head runs on
  // one row per run everywhere, as in the experiments' scheduler (issue 20).
  const src = model.forward({ inputIds: [s.source] }, { cache: names, logits: 'last' });
  const tgt = model.forward({ inputIds: [s.target] }, { cache: (n) => names.indexOf(n) % group === 0, logits: 'last' });
  const out: Float32Array[] = [];
  try {
    for (let l0 = 0; l0 < L; l0 += group) {
      const g = Math.min(group, L - l0);
      const hooks: Record<string, (v: tf.Tensor) => tf.Tensor> = {};
      for (let j = 0; j < g; j++) hooks[pre(l0 + j)] = (v) => patchRows(v, src.cache.get(pre(l0 + j))!, s.positions, [j]);
      // Rows stacked by concat (contiguous copies), as the experiments' scheduler does; wasm's Tile kernel indexes
      // element by element and took 7.5 % of the sweep.
      const start = tf.concat(Array.from({ length: g }, () => tgt.cache.get(pre(l0))!), 0);
      const ids = Array.from({ length: g }, () => s.target);
      // Only the last position's logits are read: the LM head runs on that row alone (issue 20).
      const r = model.forward({ inputIds: ids }, { startLayer: l0, startResid: start, hooks, logits: 'last' });
      out.push(...lastLogits(r.logits!));
      r.dispose();
      start.dispose();
    }
  } finally {
    src.dispose();
    tgt.dispose();
  }
  return out;
}

export function maxAbsDiff(a: Float32Array[], b: Float32Array[]): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) for (let j = 0; j < a[i].length; j++) m = Math.max(m, Math.abs(a[i][j] - b[i][j]));
  return m;
}
