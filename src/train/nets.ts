// Training forwards of the teaching VLM: a Llama decoder, a CLIP ViT and the LLaVA projector, batched for
// speed with gradients everywhere on wasm. The maths is the inference code's (src/models: the same
// rmsNorm/layerNorm/RoPE/activation functions, [in, out] weights, fused q/k/v and gate/up) so a saved model
// reproduces these logits; only the batching differs (batched attention, one-hot embedding matMul instead
// of gather, whose gradient wasm lacks; a customGrad matMul with explicit transposes, 5x faster than the
// stock gradient that uses transpose flags).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
// Gradients are registered only by the full tfjs bundle; training needs them.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { activation, layerNorm, rmsNorm, ropeTables } from '../models/layers';
import { initParam, type HostTensor, type Params } from './params';

export interface LmSize {
  vocab: number;
  d: number;
  layers: number;
  heads: number;
  inter: number;
  ropeTheta: number;
  eps: number;
}

export interface VitSize {
  image: number;
  patch: number;
  d: number;
  layers: number;
  heads: number;
  inter: number;
  eps: number;
}

/** x [N, K] · w [K, M], with a backward of plain rank-2 matMuls (the fast path on wasm). */
const matMul2Grad = (...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [x, w, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.matMul(x, w),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as tf.Tensor2D[];
      return [tf.matMul(dy as tf.Tensor2D, tf.transpose(ws)), tf.matMul(tf.transpose(xs), dy as tf.Tensor2D)];
    },
  };
};
const matMul2 = tf.customGrad(matMul2Grad as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor, w: tf.Tensor) => tf.Tensor;

/** x [..., in] · w [in, out] (+ b), as src/models/layers.ts `linear`. */
export function lin(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor | null): tf.Tensor {
  const shape = x.shape as number[];
  const x2 = x.rank === 2 ? x : x.reshape([-1, shape[shape.length - 1]]);
  let y = matMul2(x2, w);
  if (b) y = tf.add(y, b);
  return x.rank === 2 ? y : y.reshape([...shape.slice(0, -1), w.shape[1] as number]);
}

// ------------------------------------------------------------------------------------------------
// Initialisation (GPT-2 style: normal 0.02, output projections scaled by depth)

export function initLm(seed: number, s: LmSize): Map<string, HostTensor> {
  const m = new Map<string, HostTensor>();
  const hd = s.d / s.heads;
  const add = (n: string, shape: number[], init: Parameters<typeof initParam>[3]) => m.set(n, initParam(seed, n, shape, init));
  const out = 0.02 / Math.sqrt(2 * s.layers);
  add('lm.embed', [s.vocab, s.d], { normal: 0.02 });
  for (let i = 0; i < s.layers; i++) {
    const p = `lm.l${i}.`;
    add(`${p}in_norm`, [s.d], 'ones');
    for (const n of ['q', 'k', 'v']) add(`${p}${n}`, [s.d, s.heads * hd], { normal: 0.02 });
    add(`${p}o`, [s.heads * hd, s.d], { normal: out });
    add(`${p}post_norm`, [s.d], 'ones');
    add(`${p}gate`, [s.d, s.inter], { normal: 0.02 });
    add(`${p}up`, [s.d, s.inter], { normal: 0.02 });
    add(`${p}down`, [s.inter, s.d], { normal: out });
  }
  add('lm.norm', [s.d], 'ones');
  add('lm.head', [s.d, s.vocab], { normal: 0.02 });
  return m;
}

export function initVit(seed: number, s: VitSize, numClasses: number): Map<string, HostTensor> {
  const m = new Map<string, HostTensor>();
  const add = (n: string, shape: number[], init: Parameters<typeof initParam>[3]) => m.set(n, initParam(seed, n, shape, init));
  const nPatch = (s.image / s.patch) ** 2;
  const out = 0.02 / Math.sqrt(2 * s.layers);
  add('vis.patch', [3 * s.patch * s.patch, s.d], { normal: 0.02 });
  add('vis.cls', [s.d], { normal: 0.02 });
  add('vis.pos', [nPatch + 1, s.d], { normal: 0.02 });
  add('vis.pre_w', [s.d], 'ones');
  add('vis.pre_b', [s.d], 'zeros');
  for (let i = 0; i < s.layers; i++) {
    const p = `vis.l${i}.`;
    add(`${p}ln1w`, [s.d], 'ones');
    add(`${p}ln1b`, [s.d], 'zeros');
    add(`${p}qkv`, [s.d, 3 * s.d], { normal: 0.02 });
    add(`${p}qkv_b`, [3 * s.d], 'zeros');
    add(`${p}o`, [s.d, s.d], { normal: out });
    add(`${p}ob`, [s.d], 'zeros');
    add(`${p}ln2w`, [s.d], 'ones');
    add(`${p}ln2b`, [s.d], 'zeros');
    add(`${p}fc1`, [s.d, s.inter], { normal: 0.02 });
    add(`${p}fc1b`, [s.inter], 'zeros');
    add(`${p}fc2`, [s.inter, s.d], { normal: out });
    add(`${p}fc2b`, [s.d], 'zeros');
  }
  add('vhead.ln_w', [s.d], 'ones');
  add('vhead.ln_b', [s.d], 'zeros');
  add('vhead.w', [s.d, numClasses], { normal: 0.02 });
  add('vhead.b', [numClasses], 'zeros');
  return m;
}

export function initProjector(seed: number, dv: number, d: number): Map<string, HostTensor> {
  const m = new Map<string, HostTensor>();
  const add = (n: string, shape: number[], init: Parameters<typeof initParam>[3]) => m.set(n, initParam(seed, n, shape, init));
  add('proj.w1', [dv, d], { normal: 1 / Math.sqrt(dv) });
  add('proj.b1', [d], 'zeros');
  add('proj.w2', [d, d], { normal: 1 / Math.sqrt(d) });
  add('proj.b2', [d], 'zeros');
  return m;
}

// ------------------------------------------------------------------------------------------------
// Forwards

type Get = (name: string) => tf.Tensor;

export function getter(...maps: Params[]): Get {
  return (n) => {
    for (const m of maps) {
      const t = m.get(n);
      if (t) return t;
    }
    throw new Error(`teaching model: parameter ${n} is missing`);
  };
}

/** Embeddings [B, T, D] as one-hot · table (differentiable on wasm; gather's gradient is not). */
export function embedTokens(get: Get, s: LmSize, ids: number[][]): tf.Tensor {
  const B = ids.length;
  const T = ids[0].length;
  const oh = tf.oneHot(tf.tensor1d(ids.flat(), 'int32'), s.vocab).toFloat();
  return lin(oh, get('lm.embed')).reshape([B, T, s.d]);
}

function causalMask(T: number): tf.Tensor {
  const m = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = -1e30;
  return tf.tensor3d(m, [1, T, T]);
}

export interface LmTrace {
  /** Input of every block and the final block output, [B, T, D] each (for probes and checks). */
  resid?: tf.Tensor[];
  /** Attention probabilities of every block, [B * heads, T (query), T (key)] each (readout's `readBy` term). */
  attention?: tf.Tensor[];
}

/**
 * Decoder on right-padded rows (causal mask only: padding sits after every real token, positions 0..T-1).
 * Returns logits [B, T, V].
 */
export function lmForward(get: Get, s: LmSize, embeds: tf.Tensor, trace?: LmTrace): tf.Tensor {
  const [B, T] = embeds.shape as number[];
  const H = s.heads;
  const hd = s.d / H;
  const pos = new Int32Array(T).map((_, i) => i);
  const { cos, sin } = ropeTables([pos], hd, s.ropeTheta);
  // Constants at full shape: broadcasting elementwise ops are slow on wasm, same-shape ones are not.
  const cosT = tf.tile(tf.tensor3d(cos, [1, T, hd]), [B * H, 1, 1]).reshape([B * H * T, hd]);
  const sinT = tf.tile(tf.tensor3d(sin, [1, T, hd]), [B * H, 1, 1]).reshape([B * H * T, hd]);
  const rot = rotateHalfMatrix(hd);
  const mask = tf.tile(causalMask(T), [B * H, 1, 1]);
  // rotate_half as a matMul by a signed permutation: exact (each output is one input times +-1).
  const rope = (x: tf.Tensor) => tf.add(tf.mul(x, cosT), tf.mul(lin(x, rot), sinT));
  const heads = (x: tf.Tensor) => x.reshape([B, T, H, hd]).transpose([0, 2, 1, 3]).reshape([B * H * T, hd]);
  let h = embeds;
  for (let i = 0; i < s.layers; i++) {
    trace?.resid?.push(h);
    const p = `lm.l${i}.`;
    const x = rmsNorm(h, get(`${p}in_norm`), s.eps).reshape([B * T, s.d]);
    const q = tf.mul(rope(heads(lin(x, get(`${p}q`)))), 1 / Math.sqrt(hd)).reshape([B * H, T, hd]);
    const kT = rope(heads(lin(x, get(`${p}k`)))).reshape([B * H, T, hd]).transpose([0, 2, 1]);
    const v = heads(lin(x, get(`${p}v`))).reshape([B * H, T, hd]);
    const probs = tf.softmax(tf.add(tf.matMul(q, kT), mask), -1);
    trace?.attention?.push(probs);
    const att = tf.matMul(probs, v).reshape([B, H, T, hd]).transpose([0, 2, 1, 3]).reshape([B * T, H * hd]);
    h = tf.add(h, lin(att, get(`${p}o`)).reshape([B, T, s.d]));
    const y = rmsNorm(h, get(`${p}post_norm`), s.eps).reshape([B * T, s.d]);
    const m = lin(tf.mul(activation('silu', lin(y, get(`${p}gate`))), lin(y, get(`${p}up`))), get(`${p}down`));
    h = tf.add(h, m.reshape([B, T, s.d]));
  }
  trace?.resid?.push(h);
  return lin(rmsNorm(h, get('lm.norm'), s.eps), get('lm.head'));
}

function rotateHalfMatrix(hd: number): tf.Tensor {
  const half = hd / 2;
  const r = new Float32Array(hd * hd);
  // out[:, j] = -x[:, j + half] for j < half; out[:, j] = x[:, j - half] for j >= half
  for (let j = 0; j < half; j++) r[(j + half) * hd + j] = -1;
  for (let j = half; j < hd; j++) r[(j - half) * hd + j] = 1;
  return tf.tensor2d(r, [hd, hd]);
}

/** CLIP ViT on pixels [N, 3, S, S]; returns every hidden state (HF indexing: [0] = embeddings). */
export function vitForward(get: Get, s: VitSize, pixels: tf.Tensor): tf.Tensor[] {
  const [N, C, Hh, Ww] = pixels.shape as number[];
  const p = s.patch;
  const gh = Hh / p;
  const gw = Ww / p;
  const patches = pixels.reshape([N, C, gh, p, gw, p]).transpose([0, 2, 4, 1, 3, 5]).reshape([N * gh * gw, C * p * p]);
  let x = lin(patches, get('vis.patch')).reshape([N, gh * gw, s.d]);
  x = tf.concat([tf.tile(get('vis.cls').reshape([1, 1, -1]), [N, 1, 1]), x], 1);
  x = tf.add(x, get('vis.pos'));
  x = layerNorm(x, get('vis.pre_w'), get('vis.pre_b'), s.eps);
  const T = gh * gw + 1;
  const H = s.heads;
  const hd = s.d / H;
  const states = [x];
  for (let i = 0; i < s.layers; i++) {
    const l = `vis.l${i}.`;
    const a = layerNorm(x, get(`${l}ln1w`), get(`${l}ln1b`), s.eps);
    const qkv = lin(a, get(`${l}qkv`), get(`${l}qkv_b`)).reshape([N, T, 3 * H, hd]).transpose([0, 2, 1, 3]);
    const [q0, k, v] = tf.split(qkv, 3, 1);
    const q = tf.mul(q0, 1 / Math.sqrt(hd)).reshape([N * H, T, hd]);
    const probs = tf.softmax(tf.matMul(q, k.reshape([N * H, T, hd]).transpose([0, 2, 1])), -1);
    const att = tf.matMul(probs, v.reshape([N * H, T, hd])).reshape([N, H, T, hd]).transpose([0, 2, 1, 3]).reshape([N, T, s.d]);
    x = tf.add(x, lin(att, get(`${l}o`), get(`${l}ob`)));
    const h2 = layerNorm(x, get(`${l}ln2w`), get(`${l}ln2b`), s.eps);
    x = tf.add(x, lin(activation('quick_gelu', lin(h2, get(`${l}fc1`), get(`${l}fc1b`))), get(`${l}fc2`), get(`${l}fc2b`)));
    states.push(x);
  }
  return states;
}

/** LLaVA "default" features: the chosen hidden state without the CLS token, [N, patches, Dv]. */
export function vitFeatures(get: Get, s: VitSize, pixels: tf.Tensor, featureLayer: number): tf.Tensor {
  const states = vitForward(get, s, pixels);
  const idx = featureLayer < 0 ? s.layers + 1 + featureLayer : featureLayer;
  return states[idx].slice([0, 1, 0], [-1, -1, -1]);
}

/** Classification logits from the mean patch token of the last layer (pretraining head, discarded after). */
export function vitClassify(get: Get, s: VitSize, pixels: tf.Tensor): tf.Tensor {
  const states = vitForward(get, s, pixels);
  const last = states[states.length - 1].slice([0, 1, 0], [-1, -1, -1]);
  const pooled = layerNorm(tf.mean(last, 1), get('vhead.ln_w'), get('vhead.ln_b'), s.eps);
  return lin(pooled, get('vhead.w'), get('vhead.b'));
}

export function project(get: Get, feats: tf.Tensor): tf.Tensor {
  return lin(activation('gelu', lin(feats, get('proj.w1'), get('proj.b1'))), get('proj.w2'), get('proj.b2'));
}

/** Mean cross-entropy over positions with weight 1 ([B][T] targets, -1 = no loss). */
export function tokenLoss(logits: tf.Tensor, targets: number[][]): tf.Tensor {
  const V = logits.shape[logits.rank - 1] as number;
  const flat = targets.flat();
  const w: number[] = flat.map((t) => (t >= 0 ? 1 : 0));
  const n = w.reduce((a, b) => a + b, 0);
  const lp = tf.logSoftmax(logits.reshape([-1, V]));
  const oh = tf.oneHot(tf.tensor1d(flat.map((t) => Math.max(t, 0)), 'int32'), V).toFloat();
  const picked = tf.sum(tf.mul(lp, oh), -1);
  return tf.div(tf.neg(tf.sum(tf.mul(picked, tf.tensor1d(w, 'float32')))), Math.max(n, 1));
}

/**
 * Mean attention mass that the real positions after a region put on the region's positions, over those queries,
 * every head and the given blocks' probabilities ([B * heads, T, T] each, `LmTrace.attention`). `regions[b]` is row
 * b's region (its first position and length), null for a row left out; padding queries (`padId`) are left out.
 */
export function regionReadMass(probs: readonly tf.Tensor[], ids: number[][], regions: readonly ({ start: number; n: number } | null)[], padId: number, heads: number): tf.Tensor {
  const T = ids[0].length;
  if (probs.length === 0 || regions.length !== ids.length) throw new Error('regionReadMass: needs one region (or null) per row and at least one block');
  const q = new Float32Array(ids.length * heads * T);
  const k = new Float32Array(ids.length * heads * T);
  ids.forEach((r, b) => {
    const g = regions[b];
    if (!g) return;
    for (let h = 0; h < heads; h++) {
      const o = (b * heads + h) * T;
      for (let t = g.start; t < g.start + g.n; t++) k[o + t] = 1;
      for (let t = g.start + g.n; t < T; t++) if (r[t] !== padId) q[o + t] = 1;
    }
  });
  const count = q.reduce((a, x) => a + x, 0);
  const qMask = tf.tensor2d(q, [ids.length * heads, T]);
  const kMask = tf.tensor3d(k, [ids.length * heads, 1, T]);
  const per = probs.map((p) => tf.sum(tf.mul(tf.sum(tf.mul(p, kMask), -1), qMask)));
  return tf.div(tf.addN(per), Math.max(count, 1) * probs.length);
}

/** regionReadMass with the image as every row's region (rows hold it at the same positions, embedWithImages). */
export function imageReadMass(probs: readonly tf.Tensor[], ids: number[][], imageToken: number, padId: number, heads: number): tf.Tensor {
  const start = ids[0].indexOf(imageToken);
  if (start < 0 || probs.length === 0) throw new Error('imageReadMass: needs rows with an image and at least one block');
  const n = ids[0].lastIndexOf(imageToken) - start + 1;
  return regionReadMass(probs, ids, ids.map(() => ({ start, n })), padId, heads);
}

/** Embeds with image features written into the image-token slots (same span in every row, or row-wise). */
export function embedWithImages(get: Get, s: LmSize, ids: number[][], imageToken: number, feats: tf.Tensor | null): tf.Tensor {
  const textIds = ids.map((r) => r.map((t) => (t === imageToken ? 0 : t)));
  const emb = embedTokens(get, s, textIds);
  if (!feats) return emb;
  const B = ids.length;
  const T = ids[0].length;
  const start = ids[0].indexOf(imageToken);
  const n = feats.shape[1] as number;
  const sameSpan = ids.every((r) => r.indexOf(imageToken) === start && r.lastIndexOf(imageToken) === start + n - 1);
  if (!sameSpan) throw new Error('embedWithImages: every row must hold its image at the same positions');
  const parts = [emb.slice([0, 0, 0], [B, start, s.d]), feats, emb.slice([0, start + n, 0], [B, T - start - n, s.d])];
  return tf.concat(parts, 1);
}
