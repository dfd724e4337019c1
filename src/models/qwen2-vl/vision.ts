// Qwen2-VL's vision tower: a ViT over (t, h, w) patches (the Conv3d as one matMul) with 2-D rotary attention
// restricted to each image frame, and the 2x2 PatchMerger that doubles as the projector (`projector.out`).
// Values are [patches, d]: images of different sizes cannot stack.
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../../errors';
import { RunContext } from '../hooks';
import { activation, applyRope, layerNorm, linear, maskedSoftmax } from '../layers';
import { ropeInvFreq } from '../rope';
import { memoryPlanOf, readHost, residentProvider, streamedProvider, uploadHost, type HostTensor, type WeightProvider } from '../streaming';
import { checkWeights, readTensor, type Expected, type WeightSource } from '../weights';
import type { Qwen2VisionConfig } from './config';

interface VisionBlock {
  norm1w: tf.Tensor;
  norm1b: tf.Tensor;
  norm2w: tf.Tensor;
  norm2b: tf.Tensor;
  /** [E, 3E] */
  qkv: tf.Tensor;
  qkvb: tf.Tensor;
  proj: tf.Tensor;
  projb: tf.Tensor;
  fc1: tf.Tensor;
  fc1b: tf.Tensor;
  fc2: tf.Tensor;
  fc2b: tf.Tensor;
}

/** Block tensor → (HF name suffix, transpose to [in, out]). */
const BLOCK_PARTS: Record<keyof VisionBlock, [string, boolean]> = {
  norm1w: ['norm1.weight', false],
  norm1b: ['norm1.bias', false],
  norm2w: ['norm2.weight', false],
  norm2b: ['norm2.bias', false],
  qkv: ['attn.qkv.weight', true],
  qkvb: ['attn.qkv.bias', false],
  proj: ['attn.proj.weight', true],
  projb: ['attn.proj.bias', false],
  fc1: ['mlp.fc1.weight', true],
  fc1b: ['mlp.fc1.bias', false],
  fc2: ['mlp.fc2.weight', true],
  fc2b: ['mlp.fc2.bias', false],
};

export interface VisionWeights {
  /** [C * tp * p * p, E]: the Conv3d with stride = kernel as one matMul. */
  patch: tf.Tensor;
  blocks: WeightProvider<VisionBlock>;
  lnqw: tf.Tensor;
  lnqb: tf.Tensor;
  /** [4E, 4E], [4E], [4E, D], [D] */
  m0: tf.Tensor;
  m0b: tf.Tensor;
  m2: tf.Tensor;
  m2b: tf.Tensor;
}

const VISION_LN_EPS = 1e-6;

function visionExpected(c: Qwen2VisionConfig): Expected[] {
  const E = c.embedDim;
  const Mq = E * c.spatialMergeSize ** 2;
  const out: Expected[] = [{ name: 'visual.patch_embed.proj.weight', shape: [E, c.inChannels, c.temporalPatchSize, c.patchSize, c.patchSize] }];
  const shapes: Record<keyof VisionBlock, number[]> = {
    norm1w: [E], norm1b: [E], norm2w: [E], norm2b: [E], qkv: [3 * E, E], qkvb: [3 * E], proj: [E, E], projb: [E],
    fc1: [c.mlpHidden, E], fc1b: [c.mlpHidden], fc2: [E, c.mlpHidden], fc2b: [E],
  };
  for (let i = 0; i < c.depth; i++)
    for (const [k, [suffix]] of Object.entries(BLOCK_PARTS)) out.push({ name: `visual.blocks.${i}.${suffix}`, shape: shapes[k as keyof VisionBlock] });
  out.push(
    { name: 'visual.merger.ln_q.weight', shape: [E] },
    { name: 'visual.merger.ln_q.bias', shape: [E] },
    { name: 'visual.merger.mlp.0.weight', shape: [Mq, Mq] },
    { name: 'visual.merger.mlp.0.bias', shape: [Mq] },
    { name: 'visual.merger.mlp.2.weight', shape: [c.hiddenSize, Mq] },
    { name: 'visual.merger.mlp.2.bias', shape: [c.hiddenSize] },
  );
  return out;
}

export function loadVisionWeights(src: WeightSource, c: Qwen2VisionConfig): VisionWeights {
  checkWeights(src, visionExpected(c), ['visual.']);
  const E = c.embedDim;
  const conv = src.f32('visual.patch_embed.proj.weight'); // [E, K] row-major
  const K = conv.length / E;
  const patchT = new Float32Array(conv.length);
  for (let o = 0; o < E; o++) for (let i = 0; i < K; i++) patchT[i * E + o] = conv[o * K + i];
  const keys = Object.keys(BLOCK_PARTS) as (keyof VisionBlock)[];
  const free = (b: VisionBlock) => tf.dispose(Object.values(b));
  let blocks: WeightProvider<VisionBlock>;
  if (memoryPlanOf(src)?.stream) {
    const host: Record<keyof VisionBlock, HostTensor>[] = [];
    for (let i = 0; i < c.depth; i++)
      host.push(Object.fromEntries(keys.map((k) => [k, readHost(src, `visual.blocks.${i}.${BLOCK_PARTS[k][0]}`, BLOCK_PARTS[k][1])])) as Record<keyof VisionBlock, HostTensor>);
    blocks = streamedProvider(host, (h) => Object.fromEntries(keys.map((k) => [k, uploadHost(h[k])])) as unknown as VisionBlock, free);
  } else {
    const res: VisionBlock[] = [];
    for (let i = 0; i < c.depth; i++)
      res.push(Object.fromEntries(keys.map((k) => [k, readTensor(src, `visual.blocks.${i}.${BLOCK_PARTS[k][0]}`, BLOCK_PARTS[k][1])])) as unknown as VisionBlock);
    blocks = residentProvider(res, free);
  }
  return {
    patch: tf.tensor2d(patchT, [K, E]),
    blocks,
    lnqw: readTensor(src, 'visual.merger.ln_q.weight'),
    lnqb: readTensor(src, 'visual.merger.ln_q.bias'),
    m0: readTensor(src, 'visual.merger.mlp.0.weight', true),
    m0b: readTensor(src, 'visual.merger.mlp.0.bias'),
    m2: readTensor(src, 'visual.merger.mlp.2.weight', true),
    m2b: readTensor(src, 'visual.merger.mlp.2.bias'),
  };
}

/** Rotary tables [N, headDim] for patches in merge-window order: first quarter h, second w, then repeated. */
function visionRopeTables(grids: readonly (readonly [number, number, number])[], headDim: number, merge: number): { cos: Float32Array; sin: Float32Array; n: number } {
  const q = headDim / 4;
  const dim = headDim / 2;
  const { invFreq } = ropeInvFreq(dim, 10000); // q = dim / 2 frequencies
  const n = grids.reduce((a, [t, h, w]) => a + t * h * w, 0);
  const cos = new Float32Array(n * headDim);
  const sin = new Float32Array(n * headDim);
  let row = 0;
  for (const [t, h, w] of grids)
    for (let f = 0; f < t; f++)
      for (let bh = 0; bh < h / merge; bh++)
        for (let bw = 0; bw < w / merge; bw++)
          for (let mh = 0; mh < merge; mh++)
            for (let mw = 0; mw < merge; mw++) {
              const hp = bh * merge + mh;
              const wp = bw * merge + mw;
              const base = row * headDim;
              for (let i = 0; i < q; i++) {
                const ah = Math.fround(hp * invFreq[i]);
                const aw = Math.fround(wp * invFreq[i]);
                for (const off of [0, dim]) {
                  cos[base + off + i] = Math.cos(ah);
                  sin[base + off + i] = Math.sin(ah);
                  cos[base + off + q + i] = Math.cos(aw);
                  sin[base + off + q + i] = Math.sin(aw);
                }
              }
              row++;
            }
  return { cos, sin, n };
}

export class Qwen2VisionTower {
  constructor(
    readonly cfg: Qwen2VisionConfig,
    readonly w: VisionWeights,
  ) {}

  /** Flattened patches [N, C*tp*p*p] (merge-window order, images concatenated) → merged tokens [N / merge², D]. */
  forward(pixels: tf.Tensor, grids: readonly (readonly [number, number, number])[], ctx: RunContext): tf.Tensor {
    const { cfg, w } = this;
    const K = cfg.inChannels * cfg.temporalPatchSize * cfg.patchSize ** 2;
    const M = cfg.spatialMergeSize;
    for (const g of grids)
      if (g.length !== 3 || g.some((x) => !Number.isInteger(x) || x <= 0) || g[1] % M !== 0 || g[2] % M !== 0)
        throw new InputError(`imageGridThw entry ${JSON.stringify(g)} must be positive [t, h, w] with h and w multiples of ${M}`);
    const n = grids.reduce((a, [t, h, ww]) => a + t * h * ww, 0);
    if (pixels.rank !== 2 || pixels.shape[1] !== K || pixels.shape[0] !== n)
      throw new InputError(
        `Qwen2-VL pixel_values must be [patches, ${K}] with ${n} patches for grids ${JSON.stringify(grids)}, got [${pixels.shape}]`,
      );
    const E = cfg.embedDim;
    const hd = E / cfg.numHeads;
    let x = ctx.point('vision.embed', linear(pixels, w.patch));
    const tables = visionRopeTables(grids, hd, M);
    const cos = tf.tensor3d(tables.cos, [1, n, hd]);
    const sin = tf.tensor3d(tables.sin, [1, n, hd]);
    // Attention stays inside each frame of each image (HF cu_seqlens: h*w patches, repeated t times).
    const segments: [number, number][] = [];
    let s0 = 0;
    for (const [t, h, ww] of grids)
      for (let f = 0; f < t; f++) {
        segments.push([s0, h * ww]);
        s0 += h * ww;
      }
    for (let i = 0; i < cfg.depth; i++) {
      const b = `vision.blocks.${i}`;
      const l = w.blocks.acquire(i);
      try {
        x = ctx.point(`${b}.resid_pre`, x, 0, i);
        const a = ctx.point(`${b}.attn_out`, this.attention(layerNorm(x, l.norm1w, l.norm1b, VISION_LN_EPS), l, cos, sin, segments), 0, i);
        x = tf.add(x, a);
        const hN = layerNorm(x, l.norm2w, l.norm2b, VISION_LN_EPS);
        const m = ctx.point(`${b}.mlp_out`, linear(activation(cfg.hiddenAct, linear(hN, l.fc1, l.fc1b)), l.fc2, l.fc2b), 0, i);
        x = ctx.point(`${b}.resid_post`, tf.add(x, m), 0, i);
      } finally {
        w.blocks.release(i);
      }
    }
    x = ctx.point('vision.features', x);
    const q = layerNorm(x, w.lnqw, w.lnqb, VISION_LN_EPS).reshape([n / (M * M), E * M * M]);
    const merged = linear(activation('gelu', linear(q, w.m0, w.m0b)), w.m2, w.m2b);
    return ctx.point('projector.out', merged);
  }

  private attention(x: tf.Tensor, l: VisionBlock, cos: tf.Tensor, sin: tf.Tensor, segments: [number, number][]): tf.Tensor {
    const [N, E] = x.shape as number[];
    const H = this.cfg.numHeads;
    const hd = E / H;
    const qkv = linear(x, l.qkv, l.qkvb).reshape([N, 3 * H, hd]).transpose([1, 0, 2]); // (3H, N, hd)
    const [q0, k0, v] = tf.split(qkv, 3, 0);
    const q = applyRope(q0, cos, sin);
    const k = applyRope(k0, cos, sin);
    const scale = Math.sqrt(hd);
    const heads: tf.Tensor[] = [];
    for (let h = 0; h < H; h++) {
      const parts: tf.Tensor[] = [];
      for (const [start, len] of segments) {
        const qh = q.slice([h, start, 0], [1, len, hd]).reshape([len, hd]);
        const kT = k.slice([h, start, 0], [1, len, hd]).reshape([len, hd]).transpose();
        const vh = v.slice([h, start, 0], [1, len, hd]).reshape([len, hd]);
        parts.push(tf.matMul(maskedSoftmax(tf.div(tf.matMul(qh, kT), scale)), vh));
      }
      heads.push(parts.length === 1 ? parts[0] : tf.concat(parts, 0)); // (N, hd)
    }
    return linear(tf.concat(heads, 1), l.proj, l.projb);
  }

  dispose(): void {
    const { w } = this;
    w.blocks.dispose();
    tf.dispose([w.patch, w.lnqw, w.lnqb, w.m0, w.m0b, w.m2, w.m2b]);
  }
}
