// ViT vision towers: CLIP (class token, pre-LayerNorm, quick_gelu) and SigLIP (no class token, no pre-LN,
// patch-embedding bias, tanh GELU). The patch convolution is a reshape + one rank-2 matMul (stride = kernel),
// which is faster than conv2d on wasm and has gradients everywhere (wasm lacks Conv2DBackpropFilter).
import * as tf from '@tensorflow/tfjs-core';
import type { VisionConfig } from './config';
import { RunContext, type HookPointInfo } from './hooks';
import { activation, batchedAttention, layerNorm, linear, maskedSoftmax } from './layers';
import { checkWeights, readFusedBias, readFusedLinear, readTensor, type Expected, type WeightSource } from './weights';

/** One pre-LN ViT block's weights (CLIP, SigLIP; Mllama's tiled encoder has no attention biases). */
export interface VitLayer {
  ln1w: tf.Tensor;
  ln1b: tf.Tensor;
  qkv: tf.Tensor;
  qkvBias: tf.Tensor | null;
  o: tf.Tensor;
  ob: tf.Tensor | null;
  ln2w: tf.Tensor;
  ln2b: tf.Tensor;
  fc1: tf.Tensor;
  fc1b: tf.Tensor;
  fc2: tf.Tensor;
  fc2b: tf.Tensor;
}

export interface VitWeights {
  /** [C * p * p, D] */
  patch: tf.Tensor;
  patchBias: tf.Tensor | null;
  classEmbedding: tf.Tensor | null;
  position: tf.Tensor;
  preLnW: tf.Tensor | null;
  preLnB: tf.Tensor | null;
  layers: VitLayer[];
}

export function isSiglip(cfg: VisionConfig): boolean {
  return cfg.modelType === 'siglip_vision_model';
}

export function numPatches(cfg: VisionConfig): number {
  return (cfg.imageSize / cfg.patchSize) ** 2;
}

export function vitHookNames(cfg: VisionConfig, layersRun: number): HookPointInfo[] {
  const out: HookPointInfo[] = [{ name: 'vision.embed', axes: ['image', 'patch', 'd_vision'], part: 'vision' }];
  for (let i = 0; i < layersRun; i++)
    for (const k of ['resid_pre', 'attn_out', 'mlp_out', 'resid_post'])
      out.push({ name: `vision.blocks.${i}.${k}`, axes: ['image', 'patch', 'd_vision'], part: 'vision', layer: i });
  return out;
}

export function vitExpected(cfg: VisionConfig, prefix: string, layersUsed: number): Expected[] {
  const D = cfg.hiddenSize;
  const C = cfg.numChannels;
  const p = cfg.patchSize;
  const siglip = isSiglip(cfg);
  const nPos = numPatches(cfg) + (siglip ? 0 : 1);
  const e = `${prefix}embeddings.`;
  const out: Expected[] = [
    { name: `${e}patch_embedding.weight`, shape: [D, C, p, p] },
    { name: `${e}position_embedding.weight`, shape: [nPos, D] },
  ];
  if (siglip) out.push({ name: `${e}patch_embedding.bias`, shape: [D] });
  else
    out.push(
      { name: `${e}class_embedding`, shape: [D] },
      { name: `${prefix}pre_layrnorm.weight`, shape: [D] },
      { name: `${prefix}pre_layrnorm.bias`, shape: [D] },
    );
  for (let i = 0; i < layersUsed; i++) {
    const l = `${prefix}encoder.layers.${i}.`;
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj'])
      out.push({ name: `${l}self_attn.${n}.weight`, shape: [D, D] }, { name: `${l}self_attn.${n}.bias`, shape: [D] });
    out.push(
      { name: `${l}layer_norm1.weight`, shape: [D] },
      { name: `${l}layer_norm1.bias`, shape: [D] },
      { name: `${l}layer_norm2.weight`, shape: [D] },
      { name: `${l}layer_norm2.bias`, shape: [D] },
      { name: `${l}mlp.fc1.weight`, shape: [cfg.intermediateSize, D] },
      { name: `${l}mlp.fc1.bias`, shape: [cfg.intermediateSize] },
      { name: `${l}mlp.fc2.weight`, shape: [D, cfg.intermediateSize] },
      { name: `${l}mlp.fc2.bias`, shape: [D] },
    );
  }
  return out;
}

/** A stride = kernel patch convolution [D, C, p, p] as the [C*p*p, D] matrix `patchify` rows multiply. */
export function readPatchEmbedding(src: WeightSource, name: string, D: number): tf.Tensor {
  const conv = src.f32(name); // [D, C*p*p] row-major
  const K = conv.length / D;
  const patchT = new Float32Array(conv.length);
  for (let o = 0; o < D; o++) for (let i = 0; i < K; i++) patchT[i * D + o] = conv[o * K + i];
  return tf.tensor2d(patchT, [K, D]);
}

/** pixels [N, C, H, W] → [N * (H/p) * (W/p), C*p*p]: one row per patch, row-major over the grid, in conv-weight order. */
export function patchify(pixels: tf.Tensor, p: number): tf.Tensor {
  const [N, C, Hh, Ww] = pixels.shape as number[];
  const gh = Hh / p;
  const gw = Ww / p;
  // (N, C, gh, p, gw, p) → (N, gh, gw, C, p, p)
  return pixels.reshape([N, C, gh, p, gw, p]).transpose([0, 2, 4, 1, 3, 5]).reshape([N * gh * gw, C * p * p]);
}

/** Loads only the first `layersUsed` encoder layers: LLaVA reads features from layer -2, so the last is never run. */
export function loadVitWeights(src: WeightSource, cfg: VisionConfig, prefix: string, layersUsed: number): VitWeights {
  checkWeights(src, vitExpected(cfg, prefix, layersUsed));
  const D = cfg.hiddenSize;
  const e = `${prefix}embeddings.`;
  const siglip = isSiglip(cfg);
  const layers: VitLayer[] = [];
  for (let i = 0; i < layersUsed; i++) {
    const l = `${prefix}encoder.layers.${i}.`;
    const a = `${l}self_attn.`;
    layers.push({
      ln1w: readTensor(src, `${l}layer_norm1.weight`),
      ln1b: readTensor(src, `${l}layer_norm1.bias`),
      qkv: readFusedLinear(src, [`${a}q_proj.weight`, `${a}k_proj.weight`, `${a}v_proj.weight`]),
      qkvBias: readFusedBias(src, [`${a}q_proj.bias`, `${a}k_proj.bias`, `${a}v_proj.bias`]),
      o: readTensor(src, `${a}out_proj.weight`, true),
      ob: readTensor(src, `${a}out_proj.bias`),
      ln2w: readTensor(src, `${l}layer_norm2.weight`),
      ln2b: readTensor(src, `${l}layer_norm2.bias`),
      fc1: readTensor(src, `${l}mlp.fc1.weight`, true),
      fc1b: readTensor(src, `${l}mlp.fc1.bias`),
      fc2: readTensor(src, `${l}mlp.fc2.weight`, true),
      fc2b: readTensor(src, `${l}mlp.fc2.bias`),
    });
  }
  return {
    patch: readPatchEmbedding(src, `${e}patch_embedding.weight`, D),
    patchBias: siglip ? readTensor(src, `${e}patch_embedding.bias`) : null,
    classEmbedding: siglip ? null : readTensor(src, `${e}class_embedding`),
    position: readTensor(src, `${e}position_embedding.weight`),
    preLnW: siglip ? null : readTensor(src, `${prefix}pre_layrnorm.weight`),
    preLnB: siglip ? null : readTensor(src, `${prefix}pre_layrnorm.bias`),
    layers,
  };
}

export function disposeVitWeights(w: VitWeights): void {
  const all: (tf.Tensor | null)[] = [w.patch, w.patchBias, w.classEmbedding, w.position, w.preLnW, w.preLnB];
  for (const l of w.layers) all.push(...Object.values(l));
  tf.dispose(all.filter((t): t is tf.Tensor => t != null));
}

export class VisionTransformer {
  constructor(
    readonly cfg: VisionConfig,
    readonly w: VitWeights,
  ) {}

  /**
   * pixels [N, C, H, W] → hidden states list (HF indexing: [0] embeddings, [k] output of layer k-1) up to
   * `layersRun` layers. Only the entries in `keep` are returned (others are freed inside the caller's tidy).
   */
  forward(pixels: tf.Tensor, layersRun: number, ctx: RunContext): tf.Tensor[] {
    const { cfg, w } = this;
    const [N, , Hh, Ww] = pixels.shape as number[];
    const p = cfg.patchSize;
    let x = linear(patchify(pixels, p), w.patch, w.patchBias).reshape([N, (Hh / p) * (Ww / p), cfg.hiddenSize]);
    if (w.classEmbedding) x = tf.concat([tf.tile(w.classEmbedding.reshape([1, 1, -1]), [N, 1, 1]), x], 1);
    x = tf.add(x, w.position);
    if (w.preLnW && w.preLnB) x = layerNorm(x, w.preLnW, w.preLnB, cfg.layerNormEps);
    x = ctx.point('vision.embed', x);
    const states = [x];
    const opts = { heads: cfg.numHeads, eps: cfg.layerNormEps, act: cfg.hiddenAct };
    for (let i = 0; i < layersRun; i++) {
      // One tidy per block: only its output outlives it (one block's intermediates alive at a time, as in the
      // decoder); hook values live until the end of their block unless cached.
      const prev = x;
      x = tf.tidy(() => vitBlock(prev, w.layers[i], opts, ctx, `vision.blocks.${i}`, i));
      states.push(x);
    }
    return states;
  }
}

export interface VitBlockOptions {
  heads: number;
  eps: number;
  act: string;
  /** Additive attention mask [N, T, T] (Mllama: padding patches and tiles); none for CLIP/SigLIP. */
  mask?: tf.Tensor;
  /** Mllama's global layers scale the attention and MLP outputs by tanh(gate) (scalars [1]). */
  gateAttn?: tf.Tensor;
  gateFfn?: tf.Tensor;
}

/** One pre-LN ViT block with the hooks `${name}.{resid_pre, attn_out, mlp_out, resid_post}` (outputs as added). */
export function vitBlock(x: tf.Tensor, l: VitLayer, o: VitBlockOptions, ctx: RunContext, name: string, layer: number): tf.Tensor {
  x = ctx.point(`${name}.resid_pre`, x, 0, layer);
  let attn = vitAttention(layerNorm(x, l.ln1w, l.ln1b, o.eps), l, o.heads, o.mask);
  if (o.gateAttn) attn = tf.mul(tf.tanh(o.gateAttn), attn);
  x = tf.add(x, ctx.point(`${name}.attn_out`, attn, 0, layer));
  const h = layerNorm(x, l.ln2w, l.ln2b, o.eps);
  let m = linear(activation(o.act, linear(h, l.fc1, l.fc1b)), l.fc2, l.fc2b);
  if (o.gateFfn) m = tf.mul(tf.tanh(o.gateFfn), m);
  return ctx.point(`${name}.resid_post`, tf.add(x, ctx.point(`${name}.mlp_out`, m, 0, layer)), 0, layer);
}

/**
 * Bidirectional multi-head self-attention: one batched product over images and heads where that is faster
 * (layers.ts batchedAttention: small shapes, or the native BLAS kernel), else per (image, head) rank-2 products.
 * `mask` [N, T, T] is additive.
 */
export function vitAttention(x: tf.Tensor, l: VitLayer, H: number, mask?: tf.Tensor): tf.Tensor {
  const [N, T, D] = x.shape as number[];
  const hd = D / H;
  const qkv = linear(x, l.qkv, l.qkvBias).reshape([N, T, 3 * H, hd]).transpose([0, 2, 1, 3]); // (N, 3H, T, hd)
  const [q0, k, v] = tf.split(qkv, 3, 1);
  const q = tf.mul(q0, 1 / Math.sqrt(hd));
  if (batchedAttention(N, H, T, T, hd)) {
    const scores = tf.matMul(q, k, false, true); // (N, H, T, T)
    const probs = maskedSoftmax(scores, mask?.reshape([N, 1, T, T]));
    return linear(tf.matMul(probs, v).transpose([0, 2, 1, 3]).reshape([N, T, D]), l.o, l.ob);
  }
  const rows: tf.Tensor[] = [];
  for (let n = 0; n < N; n++) {
    const heads: tf.Tensor[] = [];
    for (let h = 0; h < H; h++) {
      const qh = q.slice([n, h, 0, 0], [1, 1, T, hd]).reshape([T, hd]);
      const kT = k.slice([n, h, 0, 0], [1, 1, T, hd]).reshape([T, hd]).transpose();
      const vh = v.slice([n, h, 0, 0], [1, 1, T, hd]).reshape([T, hd]);
      const scores = tf.matMul(qh, kT);
      heads.push(tf.matMul(maskedSoftmax(scores, mask?.slice([n, 0, 0], [1, T, T]).reshape([T, T])), vh));
    }
    rows.push(tf.concat(heads, 1)); // (T, D) with heads in order
  }
  return linear(tf.stack(rows, 0), l.o, l.ob);
}

