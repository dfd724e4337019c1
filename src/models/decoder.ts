// The decoder-only language model shared by every family: Llama / Mistral / Qwen2 (and Qwen2-VL's text
// model with M-RoPE). RMSNorm, rotate-half RoPE, grouped-query attention, SwiGLU MLP, untied or tied head.
// Attention runs per (row, kv group) as rank-2 matMuls: the fast path on wasm (engine.md). Which tensors it reads
// and how they are held (resident or streamed): ./decoder-weights.ts.
import * as tf from '@tensorflow/tfjs-core';
import type { DecoderConfig } from './config';
import { toF32 } from '../io/dtype';
import { RunContext, decoderHookPoints, type HookPointInfo } from './hooks';
import { applyRope, batchedAttention, gatedMlp, linear, maskedSoftmax, rmsNorm } from './layers';
import type { DecoderLayerWeights, DecoderWeights } from './decoder-weights';
import { checkActivations } from './memory-plan';
import type { HostTensor } from './streaming';

/** Finite "minus infinity": fully masked rows stay finite (no NaN leaking through 0 * NaN at pad positions). */
export const MASK_NEG = -1e30;

/** Keys and values of every layer after RoPE, [B, KV, S, hd], plus the key padding mask [B][S]. */
export interface KVCache {
  k: tf.Tensor[];
  v: tf.Tensor[];
  keyMask: number[][];
  length: number;
}

/**
 * Layers that are not self-attention blocks, run by the family (Llama-3.2-Vision's gated cross-attention layers).
 * Built per run: it holds what the layers read (the cross-attention states, their keys/values once computed).
 */
export interface CrossLayers {
  /** Runs layer `i` on the residual x [B, T, D] whose first query sits at cache offset `offset`; returns its output. */
  run(i: number, x: tf.Tensor, ctx: RunContext, offset: number): tf.Tensor;
  /** Frees what the run kept across tidy scopes (keys/values cached for generation). */
  dispose(): void;
}

export interface DecoderRun {
  /** Input embeddings [B, T, D] (ignored when ctx.opts.startLayer is set). */
  embeds: tf.Tensor;
  /** Position ids [B][T] (or [3][B][T] with M-RoPE). */
  positions: Int32Array[] | Int32Array[][];
  /** Key mask over cache + new tokens, [B][S] with 1 = real token. */
  keyMask: number[][];
  ctx: RunContext;
  cache?: KVCache;
  /** Keep K/V of this run (prefill of a generation). */
  wantCache?: boolean;
  /** The family's non-self-attention layers for this run; without it they are skipped (HF's text-only path). */
  cross?: CrossLayers;
}

export interface DecoderOutput {
  /**
   * Raw output of the last block that ran, [B, T, D] (before the final norm); [B, 1, D], the last position's, when
   * the last block ran for that position alone (`logits: 'last'` with nothing hooked after its input).
   */
  hidden: tf.Tensor;
  /** Final-norm output (absent when stopped early). */
  normed?: tf.Tensor;
  logits?: tf.Tensor;
  cache?: KVCache;
}

export function decoderHookNames(cfg: DecoderConfig): HookPointInfo[] {
  return [
    { name: 'lm.embed', axes: ['batch', 'pos', 'd_model'], part: 'lm' },
    ...decoderHookPoints('lm', 'lm', cfg.numLayers, true),
    { name: 'lm.final_norm', axes: ['batch', 'pos', 'd_model'], part: 'lm' },
    { name: 'lm.logits', axes: ['batch', 'pos', 'vocab'], part: 'lm' },
  ];
}

/** Additive causal + key-padding mask [B, 1, T, S] for queries at cache offsets offset..offset+T-1. */
export function baseMask(keyMask: number[][], T: number, offset: number): tf.Tensor {
  const B = keyMask.length;
  const S = keyMask[0].length;
  const m = new Float32Array(B * T * S);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const row = (b * T + t) * S;
      const qAbs = offset + t;
      for (let s = 0; s < S; s++) if (s > qAbs || keyMask[b][s] === 0) m[row + s] = MASK_NEG;
    }
  return tf.tensor4d(m, [B, 1, T, S]);
}

export class Decoder {
  /** Layers the family runs through DecoderRun.cross (mllama's cross-attention layers). */
  readonly crossLayers: ReadonlySet<number>;

  constructor(
    readonly cfg: DecoderConfig,
    readonly w: DecoderWeights,
    crossLayers: readonly number[] = [],
  ) {
    this.crossLayers = new Set(crossLayers);
  }

  /** Token embeddings [B, T, D] by gather (no gradient w.r.t. the table on wasm; see embedOneHot for training). */
  embed(ids: number[][]): tf.Tensor {
    const B = ids.length;
    const T = ids[0].length;
    const D = this.cfg.hiddenSize;
    if (!this.w.embed) return tf.tensor3d(gatherHostRows(this.w.embedHost!, ids.flat()), [B, T, D]);
    const flat = tf.tensor1d(ids.flat(), 'int32');
    return tf.gather(this.w.embed, flat).reshape([B, T, D]);
  }

  /** Head over the vocabulary chunks: [..., D] → [..., V]. */
  private logitsOf(normed: tf.Tensor): tf.Tensor {
    const { head } = this.w;
    const parts: tf.Tensor[] = [];
    for (let c = 0; c < head.size; c++) {
      try {
        parts.push(linear(normed, head.acquire(c)));
      } finally {
        head.release(c);
      }
    }
    return parts.length === 1 ? parts[0] : tf.concat(parts, -1);
  }

  /** Runs blocks [start, stop) and, if it reaches the end, the final norm and the head. */
  forward(run: DecoderRun): DecoderOutput {
    const { cfg, w } = this;
    const { ctx } = run;
    const start = ctx.opts.startLayer ?? 0;
    const stop = Math.min(ctx.opts.stopLayer ?? cfg.numLayers, cfg.numLayers);
    const offset = run.cache?.length ?? 0;
    let h: tf.Tensor;
    if (start > 0 || ctx.opts.startResid) {
      if (!ctx.opts.startResid) throw new Error('startLayer needs startResid (the input of that block)');
      h = ctx.opts.startResid;
    } else {
      h = ctx.point('lm.embed', run.embeds, offset);
    }
    const B = h.shape[0] as number;
    const T = h.shape[1] as number;
    checkActivations(w.memory, B, T, run.keyMask[0].length, Boolean(run.wantCache || run.cache));
    const { cos, sin } = this.rope(run.positions, B, T);
    const mask = baseMask(run.keyMask, T, offset);
    const newK: tf.Tensor[] = [];
    const newV: tf.Tensor[] = [];
    const L = cfg.numLayers;
    const lastOnly = ctx.opts.logits === 'last' && T > 1 && !ctx.wants('lm.logits');
    // When only the last position's logits are read and nothing is hooked after the last block's input, that block
    // runs its queries and MLP for the last position alone: its keys and values (the cache included) still come
    // from every position, so the logits are the full run's. One block in L of every prefill, sweep run and
    // circuit pass (issue 20: 12 of the mid sweep's 120 layer-rows).
    const after = (i: number) => ['attn.pattern', 'attn_out', 'resid_mid', 'mlp_out', 'resid_post'].map((p) => `lm.blocks.${i}.${p}`);
    const pruneLast = lastOnly && stop === L && start < L && !this.crossLayers.has(L - 1) && ![...after(L - 1), 'lm.final_norm'].some((n) => ctx.wants(n));
    const block = (i: number, x: tf.Tensor): { h: tf.Tensor; k?: tf.Tensor; v?: tf.Tensor } => {
      // A family-run layer (cross-attention); without its run state HF skips it (text-only inputs), so do we.
      if (this.crossLayers.has(i)) return { h: run.cross ? run.cross.run(i, x, ctx, offset) : x };
      const b = `lm.blocks.${i}`;
      const lw = w.layers.acquire(i);
      try {
        let y = ctx.point(`${b}.resid_pre`, x, offset, i);
        const lastQuery = pruneLast && i === L - 1;
        const { out: attnOut, k, v } = this.attention(i, rmsNorm(y, lw.inputNorm, cfg.rmsNormEps), lw, cos, sin, mask, run, offset, lastQuery);
        if (lastQuery) y = y.slice([0, T - 1, 0], [B, 1, -1]);
        const a = ctx.point(`${b}.attn_out`, attnOut, offset, i);
        y = ctx.point(`${b}.resid_mid`, tf.add(y, a), offset, i);
        const m = ctx.point(`${b}.mlp_out`, this.mlp(rmsNorm(y, lw.postNorm, cfg.rmsNormEps), lw), offset, i);
        return { h: ctx.point(`${b}.resid_post`, tf.add(y, m), offset, i), k, v };
      } finally {
        w.layers.release(i);
      }
    };
    const input = h;
    for (let i = start; i < stop; i++) {
      // One tidy per layer, and the residual it replaced freed: one layer's activations are alive at a time
      // (issue 20: a whole forward's intermediates held to its end were 1.3 GB for one 276-token row of the
      // mid shapes, and four stacked rows of a sweep ran the wasm heap out). Hook values live until the end of
      // their layer unless cached (ask for `cache`, or tf.keep, rather than holding a hook's tensor).
      const r = tf.tidy(() => block(i, h)) as { h: tf.Tensor; k?: tf.Tensor; v?: tf.Tensor };
      // A residual a hook replaced with a kept tensor of its own (a cached state) is the hook's to free.
      if (h !== input && h !== r.h && !h.kept) h.dispose();
      h = r.h;
      if (!r.k || !r.v) continue;
      if (run.wantCache) {
        newK[i] = tf.keep(r.k);
        newV[i] = tf.keep(r.v);
      } else tf.dispose([r.k, r.v]);
    }
    const cache = run.wantCache
      ? { k: newK, v: newV, keyMask: run.keyMask, length: offset + T }
      : undefined;
    if (stop < cfg.numLayers) return { hidden: h, cache };
    const normed = ctx.point('lm.final_norm', rmsNorm(h, w.norm, cfg.rmsNormEps), pruneLast ? offset + T - 1 : offset);
    const logits = lastOnly
      ? ctx.point('lm.logits', this.logitsOf(pruneLast ? normed : normed.slice([0, T - 1, 0], [B, 1, -1])), offset + T - 1)
      : ctx.point('lm.logits', this.logitsOf(normed), offset);
    return { hidden: h, normed, logits, cache };
  }

  /** Logit lens: the head applied after the final norm to any residual [.., D]. */
  unembed(resid: tf.Tensor, alreadyNormed = false): tf.Tensor {
    const n = alreadyNormed ? resid : rmsNorm(resid, this.w.norm, this.cfg.rmsNormEps);
    return this.logitsOf(n);
  }

  private rope(positions: DecoderRun['positions'], B: number, T: number): { cos: tf.Tensor; sin: tf.Tensor } {
    const { cfg } = this;
    const { cos, sin } = ropeTablesFor(positions, cfg);
    // [B, 1, T, hd]: broadcast over heads in the [B, heads, T, hd] layout
    return { cos: tf.tensor4d(cos, [B, 1, T, cfg.headDim]), sin: tf.tensor4d(sin, [B, 1, T, cfg.headDim]) };
  }

  private attention(
    layer: number,
    x: tf.Tensor,
    lw: DecoderLayerWeights,
    cos: tf.Tensor,
    sin: tf.Tensor,
    base: tf.Tensor,
    run: DecoderRun,
    offset: number,
    lastQuery = false,
  ): { out: tf.Tensor; k: tf.Tensor; v: tf.Tensor } {
    const { numHeads: H, numKvHeads: KV, headDim: hd } = this.cfg;
    const { ctx } = run;
    const [B, Tin] = x.shape as number[];
    const heads = (xs: tf.Tensor, w: tf.Tensor, b: tf.Tensor | null, n: number) => {
      const t = xs.shape[1] as number;
      return linear(xs, w, b).reshape([B, t, n, hd]).transpose([0, 2, 1, 3]); // (B, n, t, hd)
    };
    // `lastQuery`: queries for the last position only (T = 1 below), keys and values for every position.
    const last = <U extends tf.Tensor>(t: U, axis: number): U => (lastQuery ? (t.slice(t.shape.map((_, a) => (a === axis ? Tin - 1 : 0)), t.shape.map((n, a) => (a === axis ? 1 : n))) as U) : t);
    const T = lastQuery ? 1 : Tin;
    const [q0, k0, v0] = [heads(last(x, 1), lw.q, lw.qBias, H), heads(x, lw.k, lw.kBias, KV), heads(x, lw.v, lw.vBias, KV)];
    const q = applyRope(q0, last(cos, 2), last(sin, 2), 1 / Math.sqrt(hd));
    let k = applyRope(k0, cos, sin);
    let v = v0;
    if (run.cache) {
      k = tf.concat([run.cache.k[layer], k], 2);
      v = tf.concat([run.cache.v[layer], v], 2);
    }
    const S = k.shape[2] as number;
    const extra = ctx.attnMask(layer, Tin, S, offset);
    const mask = last(extra ? tf.add(base, extra) : base, 2); // (B, 1|H, T, S)
    const nRep = H / KV;
    const patternName = `lm.blocks.${layer}.attn.pattern`;
    const keepPattern = ctx.wants(patternName);
    if (batchedAttention(B, H, T, S, hd)) {
      const scores = tf.matMul(q.reshape([B, KV, nRep * T, hd]), k, false, true).reshape([B, H, T, S]);
      let pattern = maskedSoftmax(scores, mask);
      if (keepPattern) pattern = ctx.point(patternName, pattern, offset, layer);
      const ctxv = tf.matMul(pattern.reshape([B, KV, nRep * T, S]), v).reshape([B, H, T, hd]);
      return { out: linear(ctxv.transpose([0, 2, 1, 3]).reshape([B, T, H * hd]), lw.o), k, v };
    }
    const probs: tf.Tensor[][] = [];
    for (let b = 0; b < B; b++) {
      probs.push([]);
      for (let g = 0; g < KV; g++) {
        const qg = q.slice([b, g * nRep, 0, 0], [1, nRep, T, hd]).reshape([nRep * T, hd]);
        const kT = k.slice([b, g, 0, 0], [1, 1, S, hd]).reshape([S, hd]).transpose();
        const scores = tf.matMul(qg, kT).reshape([nRep, T, S]);
        const m =
          mask.shape[1] === 1
            ? mask.slice([b, 0, 0, 0], [1, 1, T, S]).reshape([1, T, S])
            : mask.slice([b, g * nRep, 0, 0], [1, nRep, T, S]).reshape([nRep, T, S]);
        probs[b].push(maskedSoftmax(scores, m));
      }
    }
    if (keepPattern) {
      const pattern = ctx.point(patternName, tf.stack(probs.map((row) => tf.concat(row, 0)), 0), offset, layer); // (B, H, T, S)
      for (let b = 0; b < B; b++)
        for (let g = 0; g < KV; g++) probs[b][g] = pattern.slice([b, g * nRep, 0, 0], [1, nRep, T, S]).reshape([nRep, T, S]);
    }
    const rows: tf.Tensor[] = [];
    for (let b = 0; b < B; b++) {
      const heads: tf.Tensor[] = [];
      for (let g = 0; g < KV; g++) {
        const vg = v.slice([b, g, 0, 0], [1, 1, S, hd]).reshape([S, hd]);
        heads.push(tf.matMul(probs[b][g].reshape([nRep * T, S]), vg).reshape([nRep, T, hd]));
      }
      rows.push(tf.concat(heads, 0)); // (H, T, hd)
    }
    const merged = tf.stack(rows, 0).transpose([0, 2, 1, 3]).reshape([B, T, H * hd]);
    return { out: linear(merged, lw.o), k, v };
  }

  private mlp(x: tf.Tensor, lw: DecoderLayerWeights): tf.Tensor {
    return gatedMlp(x, lw.gate, lw.up, lw.down, this.cfg.hiddenAct);
  }
}

import { ropeTables } from './layers';
function ropeTablesFor(positions: DecoderRun['positions'], cfg: DecoderConfig) {
  return ropeTables(positions, cfg.headDim, cfg.ropeTheta, cfg.mropeSection, cfg.ropeScaling);
}

/** HF position ids from an attention mask: cumsum(mask) - 1, pads set to 1. */
export function positionsFromMask(mask: number[][], offsets?: number[]): Int32Array[] {
  return mask.map((row, b) => {
    const out = new Int32Array(row.length);
    let c = offsets ? offsets[b] : 0;
    for (let t = 0; t < row.length; t++) {
      c += row[t];
      out[t] = row[t] ? c - 1 : 1;
    }
    return out;
  });
}

/** Embedding rows gathered on the host (streaming keeps the table there): exactly the resident gather's values. */
function gatherHostRows(table: HostTensor, ids: number[]): Float32Array {
  const D = table.shape[1];
  const out = new Float32Array(ids.length * D);
  ids.forEach((id, r) => toF32(table.dtype, table.data.subarray(id * D, (id + 1) * D), out.subarray(r * D, (r + 1) * D)));
  return out;
}

export function disposeCache(c: KVCache | undefined): void {
  if (c) tf.dispose([...c.k.filter(Boolean), ...c.v.filter(Boolean)]);
}
