// The decoder-only language model shared by every family: Llama / Mistral / Qwen2 (and Qwen2-VL's text
// model with M-RoPE). RMSNorm, rotate-half RoPE, grouped-query attention, SwiGLU MLP, untied or tied head.
// Attention runs per (row, kv group) as rank-2 matMuls: the fast path on wasm (engine.md).
import * as tf from '@tensorflow/tfjs-core';
import type { DecoderConfig } from './config';
import { toF32 } from '../io/dtype';
import { RunContext, decoderHookPoints, type HookPointInfo } from './hooks';
import { applyRope, batchedAttention, gatedMlp, linear, rmsNorm } from './layers';
import { checkActivations, type MemoryPlan } from './memory-plan';
import {
  hostRowsTransposed,
  memoryPlanOf,
  readHost,
  residentProvider,
  streamedProvider,
  uploadHost,
  type HostTensor,
  type WeightProvider,
} from './streaming';
import { checkWeights, readTensor, type Expected, type WeightSource } from './weights';

/** Finite "minus infinity": fully masked rows stay finite (no NaN leaking through 0 * NaN at pad positions). */
export const MASK_NEG = -1e30;


export interface DecoderLayerWeights {
  inputNorm: tf.Tensor;
  /**
   * [D, H * hd], [D, KV * hd], [D, KV * hd]: three products, not one fused product and a split, which is a
   * strided copy once B > 1 (layers.ts gatedMlp; issue 20).
   */
  q: tf.Tensor;
  k: tf.Tensor;
  v: tf.Tensor;
  qBias: tf.Tensor | null;
  kBias: tf.Tensor | null;
  vBias: tf.Tensor | null;
  /** [H * hd, D] */
  o: tf.Tensor;
  postNorm: tf.Tensor;
  /** [D, I] each (two products beat one fused product and a split: layers.ts gatedMlp). */
  gate: tf.Tensor;
  up: tf.Tensor;
  /** [I, D] */
  down: tf.Tensor;
}

export interface DecoderWeights {
  /** [V, D] on the device; null when streaming (rows are then gathered from `embedHost`). */
  embed: tf.Tensor | null;
  embedHost: HostTensor | null;
  /** Layer weights, asked for layer by layer: resident tensors, or uploaded per use when streaming. */
  layers: WeightProvider<DecoderLayerWeights>;
  norm: tf.Tensor;
  /** Head [D, V] as vocabulary-column chunks [D, V_c] (one chunk when resident; the transposed embedding when tied). */
  head: WeightProvider<tf.Tensor>;
  /** The memory plan the weights were loaded under (absent for in-memory sources). */
  memory?: MemoryPlan;
}

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

/** Loading options for decoders whose stack is not all self-attention layers, or whose embedding has extra rows. */
export interface DecoderLayout {
  /** Layer indices the family loads and runs itself (see CrossLayers); the decoder holds no weights for them. */
  crossLayers?: readonly number[];
  /** Rows of the embedding table when it differs from vocab_size (mllama: + 8 image/special rows). */
  embedRows?: number;
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
  /** Raw output of the last block that ran, [B, T, D] (before the final norm). */
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

/** HF tensor names and shapes the decoder needs, under `prefix` ("model." or "language_model.model."). */
export function decoderExpected(cfg: DecoderConfig, prefix: string, headName: string, layout: DecoderLayout = {}): Expected[] {
  const { hiddenSize: D, intermediateSize: I, numHeads: H, numKvHeads: KV, headDim: hd, vocabSize: V } = cfg;
  const out: Expected[] = [{ name: `${prefix}embed_tokens.weight`, shape: [layout.embedRows ?? V, D] }];
  for (let i = 0; i < cfg.numLayers; i++) {
    if (layout.crossLayers?.includes(i)) continue;
    const p = `${prefix}layers.${i}.`;
    out.push(
      { name: `${p}input_layernorm.weight`, shape: [D] },
      { name: `${p}self_attn.q_proj.weight`, shape: [H * hd, D] },
      { name: `${p}self_attn.k_proj.weight`, shape: [KV * hd, D] },
      { name: `${p}self_attn.v_proj.weight`, shape: [KV * hd, D] },
      { name: `${p}self_attn.o_proj.weight`, shape: [D, H * hd] },
      { name: `${p}post_attention_layernorm.weight`, shape: [D] },
      { name: `${p}mlp.gate_proj.weight`, shape: [I, D] },
      { name: `${p}mlp.up_proj.weight`, shape: [I, D] },
      { name: `${p}mlp.down_proj.weight`, shape: [D, I] },
    );
    if (cfg.qkvBias)
      out.push(
        { name: `${p}self_attn.q_proj.bias`, shape: [H * hd] },
        { name: `${p}self_attn.k_proj.bias`, shape: [KV * hd] },
        { name: `${p}self_attn.v_proj.bias`, shape: [KV * hd] },
      );
  }
  out.push({ name: `${prefix}norm.weight`, shape: [D] });
  if (!cfg.tieWordEmbeddings) out.push({ name: headName, shape: [V, D] });
  return out;
}

/** Buffers some exporters save next to the weights; not parameters, never read. */
const DECODER_EXTRA = [/\.rotary_emb\.inv_freq$/];

export function loadDecoderWeights(src: WeightSource, cfg: DecoderConfig, prefix: string, headName: string, layout: DecoderLayout = {}): DecoderWeights {
  // Both ways: a tensor under the decoder's own names that the config does not explain (a 4th layer when the
  // config says 3) is reported with the missing ones, in one error (issue 13). Layers the family runs itself
  // (cross-attention layers) are checked by the family.
  const own = (layout.crossLayers ?? []).map((i) => new RegExp(`^${prefix.replace(/\./g, '\\.')}layers\\.${i}\\.`));
  checkWeights(src, decoderExpected(cfg, prefix, headName, layout), [`${prefix}layers.`, `${prefix}embed_tokens.`, `${prefix}norm.`], [...DECODER_EXTRA, ...own]);
  const memory = memoryPlanOf(src);
  if (memory?.stream) return loadStreamedDecoderWeights(src, cfg, prefix, headName, memory, layout);
  // Sparse where the family runs its own layers (the providers never acquire those indices).
  const layers: DecoderLayerWeights[] = new Array(cfg.numLayers);
  for (let i = 0; i < cfg.numLayers; i++) {
    if (layout.crossLayers?.includes(i)) continue;
    const p = `${prefix}layers.${i}.`;
    const a = `${p}self_attn.`;
    layers[i] = {
      inputNorm: readTensor(src, `${p}input_layernorm.weight`),
      q: readTensor(src, `${a}q_proj.weight`, true),
      k: readTensor(src, `${a}k_proj.weight`, true),
      v: readTensor(src, `${a}v_proj.weight`, true),
      qBias: cfg.qkvBias ? readTensor(src, `${a}q_proj.bias`) : null,
      kBias: cfg.qkvBias ? readTensor(src, `${a}k_proj.bias`) : null,
      vBias: cfg.qkvBias ? readTensor(src, `${a}v_proj.bias`) : null,
      o: readTensor(src, `${a}o_proj.weight`, true),
      postNorm: readTensor(src, `${p}post_attention_layernorm.weight`),
      gate: readTensor(src, `${p}mlp.gate_proj.weight`, true),
      up: readTensor(src, `${p}mlp.up_proj.weight`, true),
      down: readTensor(src, `${p}mlp.down_proj.weight`, true),
    };
  }
  const embed = readTensor(src, `${prefix}embed_tokens.weight`);
  const lmHead = cfg.tieWordEmbeddings ? tf.transpose(embed) : readTensor(src, headName, true);
  return {
    embed,
    embedHost: null,
    layers: residentProvider(layers, freeLayer),
    norm: readTensor(src, `${prefix}norm.weight`),
    head: residentProvider([lmHead], (t) => t.dispose()),
    memory,
  };
}

function freeLayer(l: DecoderLayerWeights): void {
  tf.dispose(Object.values(l).filter((t): t is tf.Tensor => t !== null));
}

type HostLayer = { [K in keyof DecoderLayerWeights]: HostTensor | null };

/**
 * Streaming: every layer is kept in stored precision on the host, already transposed and fused like the
 * resident tensors (so an upload is one dtype conversion), the embedding table stays on the host, and the
 * head is cut into vocabulary chunks no bigger than a layer. Values are identical to the resident path.
 */
function loadStreamedDecoderWeights(src: WeightSource, cfg: DecoderConfig, prefix: string, headName: string, memory: MemoryPlan, layout: DecoderLayout): DecoderWeights {
  const host: HostLayer[] = new Array(cfg.numLayers);
  for (let i = 0; i < cfg.numLayers; i++) {
    if (layout.crossLayers?.includes(i)) continue;
    const p = `${prefix}layers.${i}.`;
    const a = `${p}self_attn.`;
    host[i] = {
      inputNorm: readHost(src, `${p}input_layernorm.weight`),
      q: readHost(src, `${a}q_proj.weight`, true),
      k: readHost(src, `${a}k_proj.weight`, true),
      v: readHost(src, `${a}v_proj.weight`, true),
      qBias: cfg.qkvBias ? readHost(src, `${a}q_proj.bias`) : null,
      kBias: cfg.qkvBias ? readHost(src, `${a}k_proj.bias`) : null,
      vBias: cfg.qkvBias ? readHost(src, `${a}v_proj.bias`) : null,
      o: readHost(src, `${a}o_proj.weight`, true),
      postNorm: readHost(src, `${p}post_attention_layernorm.weight`),
      gate: readHost(src, `${p}mlp.gate_proj.weight`, true),
      up: readHost(src, `${p}mlp.up_proj.weight`, true),
      down: readHost(src, `${p}mlp.down_proj.weight`, true),
    };
  }
  const embedHost = readHost(src, `${prefix}embed_tokens.weight`);
  const headRows = cfg.tieWordEmbeddings ? embedHost : readHost(src, headName); // [V, D]
  const { vocabSize: V, hiddenSize: D } = cfg;
  const chunkCols = Math.max(1, Math.min(V, Math.floor(memory.unitBytes / (4 * D)) || V));
  const chunks: HostTensor[] = [];
  for (let v0 = 0; v0 < V; v0 += chunkCols) chunks.push(hostRowsTransposed(headRows, v0, Math.min(V, v0 + chunkCols)));
  const upLayer = (h: HostLayer): DecoderLayerWeights => ({
    inputNorm: uploadHost(h.inputNorm!),
    q: uploadHost(h.q!),
    k: uploadHost(h.k!),
    v: uploadHost(h.v!),
    qBias: h.qBias ? uploadHost(h.qBias) : null,
    kBias: h.kBias ? uploadHost(h.kBias) : null,
    vBias: h.vBias ? uploadHost(h.vBias) : null,
    o: uploadHost(h.o!),
    postNorm: uploadHost(h.postNorm!),
    gate: uploadHost(h.gate!),
    up: uploadHost(h.up!),
    down: uploadHost(h.down!),
  });
  return {
    embed: null,
    embedHost,
    layers: streamedProvider(host, upLayer, freeLayer),
    norm: readTensor(src, `${prefix}norm.weight`),
    head: streamedProvider(chunks, uploadHost, (t) => t.dispose()),
    memory,
  };
}

export function disposeDecoderWeights(w: DecoderWeights): void {
  w.layers.dispose();
  w.head.dispose();
  tf.dispose([w.norm, ...(w.embed ? [w.embed] : [])]);
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
    const block = (i: number, x: tf.Tensor): { h: tf.Tensor; k?: tf.Tensor; v?: tf.Tensor } => {
      // A family-run layer (cross-attention); without its run state HF skips it (text-only inputs), so do we.
      if (this.crossLayers.has(i)) return { h: run.cross ? run.cross.run(i, x, ctx, offset) : x };
      const b = `lm.blocks.${i}`;
      const lw = w.layers.acquire(i);
      try {
        let y = ctx.point(`${b}.resid_pre`, x, offset, i);
        const { out: attnOut, k, v } = this.attention(i, rmsNorm(y, lw.inputNorm, cfg.rmsNormEps), lw, cos, sin, mask, run, offset);
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
    const normed = ctx.point('lm.final_norm', rmsNorm(h, w.norm, cfg.rmsNormEps), offset);
    const lastOnly = ctx.opts.logits === 'last' && T > 1 && !ctx.wants('lm.logits');
    const logits = lastOnly
      ? ctx.point('lm.logits', this.logitsOf(normed.slice([0, T - 1, 0], [B, 1, -1])), offset + T - 1)
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
  ): { out: tf.Tensor; k: tf.Tensor; v: tf.Tensor } {
    const { numHeads: H, numKvHeads: KV, headDim: hd } = this.cfg;
    const { ctx } = run;
    const [B, T] = x.shape as number[];
    const heads = (w: tf.Tensor, b: tf.Tensor | null, n: number) => linear(x, w, b).reshape([B, T, n, hd]).transpose([0, 2, 1, 3]); // (B, n, T, hd)
    const [q0, k0, v0] = [heads(lw.q, lw.qBias, H), heads(lw.k, lw.kBias, KV), heads(lw.v, lw.vBias, KV)];
    const q = tf.mul(applyRope(q0, cos, sin), 1 / Math.sqrt(hd));
    let k = applyRope(k0, cos, sin);
    let v = v0;
    if (run.cache) {
      k = tf.concat([run.cache.k[layer], k], 2);
      v = tf.concat([run.cache.v[layer], v], 2);
    }
    const S = k.shape[2] as number;
    const extra = ctx.attnMask(layer, T, S, offset);
    const mask = extra ? tf.add(base, extra) : base; // (B, 1|H, T, S)
    const nRep = H / KV;
    const patternName = `lm.blocks.${layer}.attn.pattern`;
    const keepPattern = ctx.wants(patternName);
    if (batchedAttention(B, H, T, S, hd)) {
      const scores = tf.matMul(q.reshape([B, KV, nRep * T, hd]), k, false, true).reshape([B, H, T, S]);
      let pattern = tf.softmax(tf.add(scores, mask), -1);
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
        probs[b].push(tf.softmax(tf.add(scores, m), -1));
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
