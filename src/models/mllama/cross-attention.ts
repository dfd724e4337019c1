// Llama-3.2-Vision's gated cross-attention decoder layers (HF MllamaCrossAttentionDecoderLayer, 4.45.2): no
// self-attention and no RoPE; text queries read the projected vision states through
//   h += tanh(attn_gate) · o(softmax(qn(q)·kn(k)ᵀ/√d + mask) v)
//   h += tanh(mlp_gate) · row_mask · mlp(norm(h))
// with q_norm / k_norm RMSNorms per head. HF's quirk is kept on purpose (results must match it): a text row that
// may see no tile (tokens before <|image|>, pads) gets its whole mask zeroed, so it attends to EVERY tile, and only
// the MLP term is multiplied by row_mask = 0. The run state computes each layer's keys/values once (prefill) and
// reuses them at every decode step, as HF's cache does.
import * as tf from '@tensorflow/tfjs-core';
import type { DecoderConfig } from '../config';
import { MASK_NEG, type CrossLayers } from '../decoder';
import type { HookPointInfo, RunContext } from '../hooks';
import { gatedMlp, linear, maskedSoftmax, rmsNorm } from '../layers';
import { readFusedLinear, readTensor, type Expected, type WeightSource } from '../weights';

export interface CrossLayerWeights {
  inputNorm: tf.Tensor;
  /** [D, H·hd] */
  q: tf.Tensor;
  /** [D, 2·KV·hd]: k and v fused (both read the vision states). */
  kv: tf.Tensor;
  o: tf.Tensor;
  qNorm: tf.Tensor;
  kNorm: tf.Tensor;
  attnGate: tf.Tensor;
  mlpGate: tf.Tensor;
  postNorm: tf.Tensor;
  gate: tf.Tensor;
  up: tf.Tensor;
  down: tf.Tensor;
}

export function crossLayerExpected(cfg: DecoderConfig, prefix: string, i: number): Expected[] {
  const { hiddenSize: D, intermediateSize: I, numHeads: H, numKvHeads: KV, headDim: hd } = cfg;
  const p = `${prefix}layers.${i}.`;
  return [
    { name: `${p}cross_attn_attn_gate`, shape: [1] },
    { name: `${p}cross_attn_mlp_gate`, shape: [1] },
    { name: `${p}cross_attn.q_proj.weight`, shape: [H * hd, D] },
    { name: `${p}cross_attn.k_proj.weight`, shape: [KV * hd, D] },
    { name: `${p}cross_attn.v_proj.weight`, shape: [KV * hd, D] },
    { name: `${p}cross_attn.o_proj.weight`, shape: [D, H * hd] },
    { name: `${p}cross_attn.q_norm.weight`, shape: [hd] },
    { name: `${p}cross_attn.k_norm.weight`, shape: [hd] },
    { name: `${p}input_layernorm.weight`, shape: [D] },
    { name: `${p}post_attention_layernorm.weight`, shape: [D] },
    { name: `${p}mlp.gate_proj.weight`, shape: [I, D] },
    { name: `${p}mlp.up_proj.weight`, shape: [I, D] },
    { name: `${p}mlp.down_proj.weight`, shape: [D, I] },
  ];
}

export function loadCrossLayer(src: WeightSource, prefix: string, i: number): CrossLayerWeights {
  const p = `${prefix}layers.${i}.`;
  const a = `${p}cross_attn.`;
  return {
    inputNorm: readTensor(src, `${p}input_layernorm.weight`),
    q: readTensor(src, `${a}q_proj.weight`, true),
    kv: readFusedLinear(src, [`${a}k_proj.weight`, `${a}v_proj.weight`]),
    o: readTensor(src, `${a}o_proj.weight`, true),
    qNorm: readTensor(src, `${a}q_norm.weight`),
    kNorm: readTensor(src, `${a}k_norm.weight`),
    attnGate: readTensor(src, `${p}cross_attn_attn_gate`),
    mlpGate: readTensor(src, `${p}cross_attn_mlp_gate`),
    postNorm: readTensor(src, `${p}post_attention_layernorm.weight`),
    gate: readTensor(src, `${p}mlp.gate_proj.weight`, true),
    up: readTensor(src, `${p}mlp.up_proj.weight`, true),
    down: readTensor(src, `${p}mlp.down_proj.weight`, true),
  };
}

export function crossLayerHookPoints(i: number): HookPointInfo[] {
  const b = `lm.blocks.${i}`;
  const d = ['batch', 'pos', 'd_model'];
  return [
    { name: `${b}.resid_pre`, axes: d, part: 'lm', layer: i },
    { name: `${b}.xattn.states`, axes: ['batch', 'vision_token', 'd_model'], part: 'lm', layer: i },
    { name: `${b}.xattn.pattern`, axes: ['batch', 'head', 'query_pos', 'vision_token'], part: 'lm', layer: i },
    { name: `${b}.xattn_out`, axes: d, part: 'lm', layer: i },
    { name: `${b}.resid_mid`, axes: d, part: 'lm', layer: i },
    { name: `${b}.mlp_out`, axes: d, part: 'lm', layer: i },
    { name: `${b}.resid_post`, axes: d, part: 'lm', layer: i },
  ];
}

/**
 * Which vision tokens each text row may attend to: `visible[b][t]` has one 0/1 per image·tile (the
 * MllamaProcessor cross_attention_mask [B, T, images, tiles], flattened), each tile covering `patches` tokens.
 */
export interface CrossMask {
  visible: number[][][];
  patches: number;
}

/** The state of one run (a forward or a whole generation) through the cross-attention layers. */
export class CrossAttentionRun implements CrossLayers {
  private readonly kv = new Map<number, { k: tf.Tensor; v: tf.Tensor }>();
  private readonly promptLen: number;

  constructor(
    private readonly cfg: DecoderConfig,
    private readonly layers: ReadonlyMap<number, CrossLayerWeights>,
    /** Projected vision states [B, S, D] (S = images·tiles·patches); only read until every layer's K/V exists. */
    private readonly states: tf.Tensor,
    private readonly mask: CrossMask,
  ) {
    this.promptLen = mask.visible[0].length;
  }

  /**
   * Keys and values of layer i, [B, KV, S, hd], computed once and kept across the tidy scopes of a generation.
   * The states pass through `lm.blocks.i.xattn.states` first, so cross-patching can swap a donor's states into
   * chosen layers only (the hook fires once per run: decode steps reuse the keys/values).
   */
  private keysValues(i: number, w: CrossLayerWeights, ctx: RunContext): { k: tf.Tensor; v: tf.Tensor } {
    const got = this.kv.get(i);
    if (got) return got;
    const { numKvHeads: KV, headDim: hd, rmsNormEps: eps } = this.cfg;
    const [B, S] = this.states.shape as number[];
    const kv = tf.tidy(() => {
      const states = ctx.point(`lm.blocks.${i}.xattn.states`, this.states, 0, i);
      const [k0, v0] = tf.split(linear(states, w.kv).reshape([B, S, 2 * KV, hd]).transpose([0, 2, 1, 3]), 2, 1);
      return { k: tf.keep(rmsNorm(k0, w.kNorm, eps)), v: tf.keep(v0.clone()) };
    });
    this.kv.set(i, kv);
    return kv;
  }

  /**
   * Additive mask [B, 1, Tq, S] and MLP row mask [B, Tq, 1] for queries at offset..offset+Tq-1; a decode step
   * reuses the last prompt row (HF extends cross_attention_mask with its last row).
   */
  private masks(Tq: number, offset: number): { add: tf.Tensor; row: tf.Tensor } {
    const { visible, patches } = this.mask;
    const B = visible.length;
    const tiles = visible[0][0].length;
    const S = tiles * patches;
    const add = new Float32Array(B * Tq * S);
    const row = new Float32Array(B * Tq);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < Tq; t++) {
        const vis = visible[b][Math.min(offset + t, this.promptLen - 1)];
        if (!vis.some((x) => x !== 0)) continue; // HF: fully masked row → mask zeroed (sees all), row_mask 0
        row[b * Tq + t] = 1;
        const base = (b * Tq + t) * S;
        for (let j = 0; j < tiles; j++) if (!vis[j]) add.fill(MASK_NEG, base + j * patches, base + (j + 1) * patches);
      }
    return { add: tf.tensor4d(add, [B, 1, Tq, S]), row: tf.tensor3d(row, [B, Tq, 1]) };
  }

  run(i: number, x: tf.Tensor, ctx: RunContext, offset: number): tf.Tensor {
    const w = this.layers.get(i)!;
    const { numHeads: H, numKvHeads: KV, headDim: hd, rmsNormEps: eps } = this.cfg;
    const [B, T] = x.shape as number[];
    const b = `lm.blocks.${i}`;
    const y = ctx.point(`${b}.resid_pre`, x, offset, i);
    const { k, v } = this.keysValues(i, w, ctx);
    const S = k.shape[2] as number;
    const q = rmsNorm(linear(rmsNorm(y, w.inputNorm, eps), w.q).reshape([B, T, H, hd]).transpose([0, 2, 1, 3]), w.qNorm, eps);
    const { add, row } = this.masks(T, offset);
    const extra = ctx.opts.crossAttnMask?.(i, { step: ctx.step, offset, tq: T, tk: S });
    const nRep = H / KV;
    // HF divides the scores by √hd after the product (the self-attention path scales q first).
    const scores = tf.div(tf.matMul(q.reshape([B, KV, nRep * T, hd]), k, false, true), Math.sqrt(hd)).reshape([B, H, T, S]);
    const total = extra ? tf.add(add, extra) : add;
    let pattern = maskedSoftmax(scores, total);
    // Knockout: a query whose every edge is blocked reads nothing (softmax alone would spread it evenly over the
    // blocked tokens). HF's own all-masked rows never get here: their mask is zeroed above.
    if (extra) pattern = tf.mul(pattern, tf.cast(tf.greater(tf.max(total, -1, true), MASK_NEG / 2), 'float32'));
    const patternName = `${b}.xattn.pattern`;
    if (ctx.wants(patternName)) pattern = ctx.point(patternName, pattern, offset, i);
    const heads = tf.matMul(pattern.reshape([B, KV, nRep * T, S]), v).reshape([B, H, T, hd]);
    const attn = linear(heads.transpose([0, 2, 1, 3]).reshape([B, T, H * hd]), w.o);
    const a = ctx.point(`${b}.xattn_out`, tf.mul(tf.tanh(w.attnGate), attn), offset, i);
    const mid = ctx.point(`${b}.resid_mid`, tf.add(y, a), offset, i);
    const mlp = tf.mul(tf.tanh(w.mlpGate), tf.mul(row, gatedMlp(rmsNorm(mid, w.postNorm, eps), w.gate, w.up, w.down, this.cfg.hiddenAct)));
    const m = ctx.point(`${b}.mlp_out`, mlp, offset, i);
    return ctx.point(`${b}.resid_post`, tf.add(mid, m), offset, i);
  }

  dispose(): void {
    for (const { k, v } of this.kv.values()) tf.dispose([k, v]);
    this.kv.clear();
  }
}

export function disposeCrossLayer(w: CrossLayerWeights): void {
  tf.dispose(Object.values(w));
}
