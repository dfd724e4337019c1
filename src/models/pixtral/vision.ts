// PixtralVisionModel (transformers 4.45.2): every image at its own size (a multiple of the patch), patch
// convolution without bias, RMSNorm ln_pre, then pre-norm blocks of 2-D-RoPE attention and a gated MLP. All
// images of a batch form ONE sequence with a block-diagonal mask (HF `generate_block_attention_mask`); here each
// image attends on its own, which is the same computation (masked scores contribute exp(-inf) = 0 exactly).
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../../errors';
import { engineConfig } from '../../engine/config';
import { RunContext, type HookPointInfo } from '../hooks';
import { applyRope, gatedMlp, linear, maskedSoftmax, rmsNorm } from '../layers';
import { patchify, readPatchEmbedding } from '../vit';
import { checkWeights, readFusedLinear, readTensor, type Expected, type WeightSource } from '../weights';
import { PIXTRAL_NORM_EPS, type PixtralVisionConfig } from './config';

interface PixtralLayer {
  attnNorm: tf.Tensor;
  /** [D, 3D]: q, k, v fused. */
  qkv: tf.Tensor;
  o: tf.Tensor;
  ffnNorm: tf.Tensor;
  /** [D, I] each. */
  gate: tf.Tensor;
  up: tf.Tensor;
  down: tf.Tensor;
}

export interface PixtralVisionWeights {
  /** [C*p*p, D] */
  patch: tf.Tensor;
  lnPre: tf.Tensor;
  layers: PixtralLayer[];
}

export function pixtralVisionExpected(cfg: PixtralVisionConfig, prefix: string, layersUsed: number): Expected[] {
  const { hiddenSize: D, intermediateSize: I, numChannels: C, patchSize: p } = cfg;
  const out: Expected[] = [
    { name: `${prefix}patch_conv.weight`, shape: [D, C, p, p] },
    { name: `${prefix}ln_pre.weight`, shape: [D] },
  ];
  for (let i = 0; i < layersUsed; i++) {
    const l = `${prefix}transformer.layers.${i}.`;
    out.push({ name: `${l}attention_norm.weight`, shape: [D] }, { name: `${l}ffn_norm.weight`, shape: [D] });
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) out.push({ name: `${l}attention.${n}.weight`, shape: [D, D] });
    out.push(
      { name: `${l}feed_forward.gate_proj.weight`, shape: [I, D] },
      { name: `${l}feed_forward.up_proj.weight`, shape: [I, D] },
      { name: `${l}feed_forward.down_proj.weight`, shape: [D, I] },
    );
  }
  return out;
}

/** Loads the first `layersUsed` blocks (features from an earlier layer never need the later ones). */
export function loadPixtralVisionWeights(src: WeightSource, cfg: PixtralVisionConfig, prefix: string, layersUsed: number): PixtralVisionWeights {
  checkWeights(src, pixtralVisionExpected(cfg, prefix, layersUsed));
  const layers: PixtralLayer[] = [];
  for (let i = 0; i < layersUsed; i++) {
    const l = `${prefix}transformer.layers.${i}.`;
    const a = `${l}attention.`;
    const f = `${l}feed_forward.`;
    layers.push({
      attnNorm: readTensor(src, `${l}attention_norm.weight`),
      qkv: readFusedLinear(src, [`${a}q_proj.weight`, `${a}k_proj.weight`, `${a}v_proj.weight`]),
      o: readTensor(src, `${a}o_proj.weight`, true),
      ffnNorm: readTensor(src, `${l}ffn_norm.weight`),
      gate: readTensor(src, `${f}gate_proj.weight`, true),
      up: readTensor(src, `${f}up_proj.weight`, true),
      down: readTensor(src, `${f}down_proj.weight`, true),
    });
  }
  return { patch: readPatchEmbedding(src, `${prefix}patch_conv.weight`, cfg.hiddenSize), lnPre: readTensor(src, `${prefix}ln_pre.weight`), layers };
}

export function disposePixtralVisionWeights(w: PixtralVisionWeights): void {
  tf.dispose([w.patch, w.lnPre, ...w.layers.flatMap((l) => Object.values(l))]);
}

export function pixtralVisionHookNames(layersRun: number): HookPointInfo[] {
  const out: HookPointInfo[] = [{ name: 'vision.embed', axes: ['patch', 'd_vision'], part: 'vision' }];
  for (let i = 0; i < layersRun; i++)
    for (const k of ['resid_pre', 'attn_out', 'mlp_out', 'resid_post'])
      out.push({ name: `vision.blocks.${i}.${k}`, axes: ['patch', 'd_vision'], part: 'vision', layer: i });
  return out;
}

/**
 * cos/sin [patches, head_dim] of HF `PixtralRotaryEmbedding` for one image's rows x cols grid. Of the head_dim/2
 * frequencies f_i = 1/theta^(2i/head_dim), the even-indexed ones turn with the patch's row and the odd-indexed
 * ones with its column: angles [r·f0, r·f2, …, c·f1, c·f3, …], duplicated for the rotate-half layout. (HF indexes
 * a table of (image_size/patch)² cells by r·max_width + c; the cell's angles are exactly these products.)
 */
export function pixtralRopeTables(rows: number, cols: number, headDim: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  const quarter = headDim / 4;
  // float32 like torch: 1 / theta ** (arange(0, dim, 2).float() / dim)
  const freqs = Array.from({ length: half }, (_, i) => Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / headDim)))));
  const n = rows * cols;
  const cos = new Float32Array(n * headDim);
  const sin = new Float32Array(n * headDim);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const base = (r * cols + c) * headDim;
      for (let j = 0; j < half; j++) {
        const ang = j < quarter ? Math.fround(r * freqs[2 * j]) : Math.fround(c * freqs[2 * (j - quarter) + 1]);
        const cv = Math.cos(ang);
        const sv = Math.sin(ang);
        cos[base + j] = cv;
        cos[base + j + half] = cv;
        sin[base + j] = sv;
        sin[base + j + half] = sv;
      }
    }
  return { cos, sin };
}

export class PixtralVisionModel {
  /** Attention sizes (heads·n²·head_dim per image) up to which all heads run as one batched product. */
  batchedAttentionMax = engineConfig().batchedAttentionMax;

  constructor(
    readonly cfg: PixtralVisionConfig,
    readonly w: PixtralVisionWeights,
  ) {}

  /** Patch grid [rows, cols] of an image of [height, width] pixels (both multiples of the patch). */
  gridOf(size: readonly [number, number]): [number, number] {
    const p = this.cfg.patchSize;
    const [h, w] = size;
    const max = this.cfg.imageSize;
    if (!Number.isInteger(h / p) || !Number.isInteger(w / p) || h <= 0 || w <= 0)
      throw new InputError(`Pixtral image of ${h}x${w} px is not a whole number of ${p}px patches: resize it with PixtralImageProcessor`);
    if (h > max || w > max)
      throw new InputError(`Pixtral image of ${h}x${w} px exceeds vision_config.image_size ${max} (the 2-D RoPE table's extent): resize it first`);
    return [h / p, w / p];
  }

  /**
   * pixels [N, C, H, W] (images zero-padded at the bottom/right to a common size) and each image's real
   * [height, width] → hidden states over all patches of all images, image after image, row-major within an
   * image: [0] = ln_pre output, [k] = output of block k-1 (HF indexing), up to `layersRun` blocks.
   */
  forward(pixels: tf.Tensor, sizes: readonly (readonly [number, number])[], layersRun: number, ctx: RunContext): tf.Tensor[] {
    const { cfg, w } = this;
    const [N, C, Hh, Ww] = pixels.shape as number[];
    if (sizes.length !== N) throw new InputError(`pixel_values holds ${N} images but ${sizes.length} image sizes were given`);
    const grids = sizes.map((s, n) => {
      if (s[0] > Hh || s[1] > Ww) throw new InputError(`image ${n} is ${s[0]}x${s[1]} px but pixel_values are only ${Hh}x${Ww}`);
      return this.gridOf(s);
    });
    const p = cfg.patchSize;
    const embeds = grids.map(([r, c], n) => {
      const img = r * p === Hh && c * p === Ww ? pixels.slice([n], [1]) : pixels.slice([n, 0, 0, 0], [1, C, r * p, c * p]);
      return linear(patchify(img, p), w.patch);
    });
    let x = rmsNorm(embeds.length === 1 ? embeds[0] : tf.concat(embeds, 0), w.lnPre, PIXTRAL_NORM_EPS);
    x = ctx.point('vision.embed', x);
    const tables = grids.map(([r, c]) => pixtralRopeTables(r, c, cfg.headDim, cfg.ropeTheta));
    const cos = tf.tensor3d(concatF32(tables.map((t) => t.cos)), [x.shape[0] as number, 1, cfg.headDim]);
    const sin = tf.tensor3d(concatF32(tables.map((t) => t.sin)), [x.shape[0] as number, 1, cfg.headDim]);
    const lengths = grids.map(([r, c]) => r * c);
    const states = [x];
    for (let i = 0; i < layersRun; i++) {
      const b = `vision.blocks.${i}`;
      const l = w.layers[i];
      x = ctx.point(`${b}.resid_pre`, x, 0, i);
      const a = ctx.point(`${b}.attn_out`, this.attention(rmsNorm(x, l.attnNorm, PIXTRAL_NORM_EPS), l, cos, sin, lengths), 0, i);
      x = tf.add(x, a);
      const m = ctx.point(`${b}.mlp_out`, gatedMlp(rmsNorm(x, l.ffnNorm, PIXTRAL_NORM_EPS), l.gate, l.up, l.down, cfg.hiddenAct), 0, i);
      x = ctx.point(`${b}.resid_post`, tf.add(x, m), 0, i);
      states.push(x);
    }
    return states;
  }

  /** x [P, D] over all images; each image's patches attend to that image's patches only. */
  private attention(x: tf.Tensor, l: PixtralLayer, cos: tf.Tensor, sin: tf.Tensor, lengths: number[]): tf.Tensor {
    const { numHeads: H, headDim: hd, hiddenSize: D } = this.cfg;
    const P = x.shape[0] as number;
    const qkv = linear(x, l.qkv).reshape([P, 3 * H, hd]);
    const [q0, k0, v] = tf.split(qkv, 3, 1); // each [P, H, hd]
    const q = applyRope(q0, cos, sin, 1 / Math.sqrt(hd));
    const k = applyRope(k0, cos, sin);
    const outs: tf.Tensor[] = [];
    let s = 0;
    for (const n of lengths) {
      const head = (t: tf.Tensor) => t.slice([s, 0, 0], [n, H, hd]).transpose([1, 0, 2]); // [H, n, hd]
      const [qi, ki, vi] = [head(q), head(k), head(v)];
      if (H * n * n * hd <= this.batchedAttentionMax) {
        const probs = maskedSoftmax(tf.matMul(qi, ki, false, true)); // [H, n, n]
        outs.push(tf.matMul(probs, vi).transpose([1, 0, 2]).reshape([n, D]));
      } else {
        // A full-size image (Pixtral-12B: 64x64 patches, 16 heads) would hold H·n² scores at once: one head
        // at a time, as rank-2 products (the fast path on wasm).
        const heads: tf.Tensor[] = [];
        for (let h = 0; h < H; h++) {
          const one = (t: tf.Tensor) => t.slice([h, 0, 0], [1, n, hd]).reshape([n, hd]);
          const probs = maskedSoftmax(tf.matMul(one(qi), one(ki).transpose()));
          heads.push(tf.matMul(probs, one(vi)));
        }
        outs.push(tf.concat(heads, 1)); // [n, H·hd], heads in order
      }
      s += n;
    }
    return linear(outs.length === 1 ? outs[0] : tf.concat(outs, 0), l.o);
  }
}

function concatF32(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
