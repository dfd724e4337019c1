// Attribution patching (Nanda; Syed et al. 2023): score(l, p) = Σ_d (a_corrupt − a_clean)[l,p,d] · ∂M/∂a[l,p,d]
// at the clean run, for every layer and position from one forward + one backward. Gradients are taken
// with respect to the residual streams (a zero "delta" added at each hook point), never the embedding
// table: wasm lacks the gather gradient. The integrated-gradients variant averages the gradient over k
// interpolations of the input embeddings between clean and corrupt.
import * as tf from '@tensorflow/tfjs-core';
// Gradient kernels are registered by this side effect (tfjs-core alone has none).
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { InputError } from '../errors';
import type { HookFn } from '../models/hooks';
import type { Model, ModelInputs } from '../models/model';

/** M on the last position's logits, as a tensor (for gradients) and on plain numbers (for exact patching). */
export interface Metric {
  name: string;
  tensor(lastLogits: tf.Tensor): tf.Scalar;
  value(lastLogits: Float32Array): number;
}

/** One entry of a [V] vector by slicing (gather has no gradient on wasm). */
function pick(v: tf.Tensor, i: number): tf.Tensor {
  return v.slice([i], [1]);
}

/** How a metric's name shows a token: its id, or the id with its text (metricFor's, given the tokenizer). */
export type TokenLabel = (id: number) => string;

/** M = logit[plus] − logit[minus] (the attnp_A fixture: plus 223, minus 251). */
export function logitDiff(plus: number, minus: number, label: TokenLabel = String): Metric {
  return {
    name: `logit[${label(plus)}] - logit[${label(minus)}]`,
    tensor: (l) => tf.sub(pick(l, plus), pick(l, minus)).reshape([]) as tf.Scalar,
    value: (l) => l[plus] - l[minus],
  };
}

export function answerLogit(token: number, label: TokenLabel = String): Metric {
  return { name: `logit[${label(token)}]`, tensor: (l) => pick(l, token).reshape([]) as tf.Scalar, value: (l) => l[token] };
}

export function answerProb(token: number, label: TokenLabel = String): Metric {
  return {
    name: `p[${label(token)}]`,
    tensor: (l) => pick(tf.softmax(l.reshape([1, -1]), -1).reshape([-1]), token).reshape([]) as tf.Scalar,
    value: (l) => {
      let max = -Infinity;
      for (const v of l) if (v > max) max = v;
      let s = 0;
      for (const v of l) s += Math.exp(v - max);
      return Math.exp(l[token] - max) / s;
    },
  };
}

/** The residual hook points in HF hidden_states order: embedding, block outputs 0..L-2, final norm; plus the last raw block output. */
export function attributionPoints(numLayers: number): { hidden: string[]; layerOut: string[] } {
  const layerOut = Array.from({ length: numLayers }, (_, l) => `lm.blocks.${l}.resid_post`);
  return { hidden: ['lm.embed', ...layerOut.slice(0, -1), 'lm.final_norm'], layerOut };
}

export interface AttributionResult {
  mClean: number;
  mCorrupt: number;
  /** dM/da at the clean run for HF hidden_states[i] (i = 0..L), each [T·D] row-major. */
  gradHidden: Float32Array[];
  /** dM/da for the raw output of block l (l = 0..L-1). */
  gradLayerOut: Float32Array[];
  /** Scores [L+1][T] on hidden_states and [L][T] on block outputs. */
  scoresHidden: number[][];
  scoresLayerOut: number[][];
  /** Scores [T] at each extra hook point asked for (`points`: e.g. lm.blocks.l.mlp_out, lm.blocks.l.attn_out). */
  scoresAt: Map<string, number[]>;
  /**
   * Σ over `positions` of (a_corrupt − a_clean) at a hook point the scores cover, [D]: what the site writes
   * differently for the two inputs (the factor of the score that does not depend on the metric).
   */
  deltaAt(point: string, positions: readonly number[]): Float32Array;
  T: number;
}

function lastPosition(logits: tf.Tensor): tf.Tensor {
  const [, T, V] = logits.shape as number[];
  return logits.slice([0, T - 1, 0], [1, 1, V]).reshape([V]);
}

function activations(model: Model, inputs: ModelInputs, names: string[]): { acts: Map<string, Float32Array>; m: Float32Array } {
  const out = model.forward(inputs, { cache: names });
  try {
    const acts = new Map(names.map((n) => [n, out.cache.get(n)!.dataSync() as Float32Array]));
    const last = tf.tidy(() => lastPosition(out.logits!));
    const m = last.dataSync() as Float32Array;
    last.dispose();
    return { acts, m };
  } finally {
    out.dispose();
  }
}

/**
 * Attribution scores for one clean/corrupt pair (each a single row of the same length).
 * `igSteps` > 0: the gradient is averaged over embeddings clean + α(corrupt − clean), α = (i + ½)/k.
 */
export function attributionPatching(model: Model, clean: ModelInputs, corrupt: ModelInputs, metric: Metric, opts: { igSteps?: number; points?: readonly string[] } = {}): AttributionResult {
  if (clean.inputIds.length !== 1 || corrupt.inputIds.length !== 1) throw new InputError('attribution patching takes one clean and one corrupt row');
  const T = clean.inputIds[0].length;
  if (corrupt.inputIds[0].length !== T) throw new InputError(`clean and corrupt prompts must have the same length (${T} vs ${corrupt.inputIds[0].length})`);
  const D = model.dModel;
  const L = model.numLayers;
  const pts = attributionPoints(L);
  // Component outputs (attn_out, mlp_out) are hook points like the residuals: a zero delta added there
  // gives dM/d(component output), and (corrupt − clean)·grad is the linear estimate of patching it.
  const all = [...new Set([...pts.hidden, ...pts.layerOut, ...(opts.points ?? [])])];
  const c = activations(model, clean, all);
  const k = activations(model, corrupt, all);
  const steps = opts.igSteps ?? 0;
  const alphas = steps > 0 ? Array.from({ length: steps }, (_, i) => (i + 0.5) / steps) : [null];
  const sums = all.map(() => new Float32Array(T * D));
  const corruptEmbed = tf.tensor3d(k.acts.get('lm.embed')!, [1, T, D]);
  try {
    for (const alpha of alphas) {
      const deltas = all.map(() => tf.zeros([1, T, D]));
      const f = (...ds: tf.Tensor[]) => {
        const hooks: Record<string, HookFn[]> = {};
        all.forEach((p, i) => (hooks[p] = [(v) => tf.add(v, ds[i])]));
        if (alpha !== null) hooks['lm.embed'].unshift((v) => tf.add(v, tf.mul(tf.sub(corruptEmbed, v), alpha)));
        const out = model.forward(clean, { hooks });
        return metric.tensor(lastPosition(out.logits!));
      };
      const grads = tf.grads(f)(deltas);
      grads.forEach((g, i) => {
        const d = g.dataSync() as Float32Array;
        for (let j = 0; j < d.length; j++) sums[i][j] += d[j] / alphas.length;
      });
      tf.dispose([...grads, ...deltas]);
    }
  } finally {
    corruptEmbed.dispose();
  }
  const grad = new Map(all.map((n, i) => [n, sums[i]]));
  const scores = (name: string) => {
    const a = c.acts.get(name)!;
    const b = k.acts.get(name)!;
    const g = grad.get(name)!;
    return Array.from({ length: T }, (_, p) => {
      let s = 0;
      for (let d = 0; d < D; d++) s += (b[p * D + d] - a[p * D + d]) * g[p * D + d];
      return s;
    });
  };
  return {
    mClean: metric.value(c.m),
    mCorrupt: metric.value(k.m),
    gradHidden: pts.hidden.map((n) => grad.get(n)!),
    gradLayerOut: pts.layerOut.map((n) => grad.get(n)!),
    scoresHidden: pts.hidden.map(scores),
    scoresLayerOut: pts.layerOut.map(scores),
    scoresAt: new Map((opts.points ?? []).map((n) => [n, scores(n)])),
    deltaAt: (name, positions) => {
      const a = c.acts.get(name);
      const b = k.acts.get(name);
      if (!a || !b) throw new InputError(`deltaAt: ${name} is not among the hook points attribution ran on`);
      const out = new Float32Array(D);
      for (const p of positions) {
        if (!Number.isInteger(p) || p < 0 || p >= T) throw new InputError(`deltaAt: position ${p} outside 0..${T - 1}`);
        for (let d = 0; d < D; d++) out[d] += b[p * D + d] - a[p * D + d];
      }
      return out;
    },
    T,
  };
}

/**
 * Exact patching of one hook point at some positions: the clean run with the activation there replaced by
 * clean + scale·(corrupt − clean) (scale 1: the corrupt activation; small scales give finite differences).
 * Returns M(patched) − M(clean). `corruptAct` is the corrupt run's activation at `point`, [T·D]; `mClean`
 * (M of the clean run, e.g. AttributionResult.mClean) saves its forward.
 */
export function patchEffect(model: Model, clean: ModelInputs, point: string, corruptAct: Float32Array, positions: readonly number[], metric: Metric, scale = 1, mClean?: number): number {
  const D = model.dModel;
  const T = clean.inputIds[0].length;
  const mask = new Float32Array(T * D);
  for (const p of positions) mask.fill(scale, p * D, (p + 1) * D);
  const value = (hooks?: Record<string, HookFn[]>) => {
    const out = model.forward(clean, { hooks });
    try {
      const last = tf.tidy(() => lastPosition(out.logits!));
      const v = metric.value(last.dataSync() as Float32Array);
      last.dispose();
      return v;
    } finally {
      out.dispose();
    }
  };
  const target = tf.tensor3d(corruptAct, [1, T, D]);
  const m = tf.tensor3d(mask, [1, T, D]);
  try {
    return value({ [point]: [(v) => tf.add(v, tf.mul(tf.sub(target, v), m))] }) - (mClean ?? value());
  } finally {
    target.dispose();
    m.dispose();
  }
}

/** A hook point's activation on one run, [T·D]. */
export function activationAt(model: Model, inputs: ModelInputs, point: string): Float32Array {
  const out = model.forward(inputs, { cache: [point] });
  try {
    return out.cache.get(point)!.dataSync() as Float32Array;
  } finally {
    out.dispose();
  }
}
