// Qwen2-VL (Qwen2VLForConditionalGeneration, transformers 4.45): a ViT over (t, h, w) patches with 2-D rotary
// attention restricted to each image frame, a 2x2 PatchMerger that doubles as the projector, and a Qwen2
// decoder whose RoPE has three position streams (M-RoPE: temporal, height, width) that hopscope computes
// itself from the prompt and the image grids, exactly like HF `get_rope_index`.
// Hook names follow the other families: `vision.embed` (patch embedding), `vision.blocks.{i}.*`,
// `vision.features` (last block output, the merger's input) and `projector.out` (the merger's output: Qwen2-VL's
// projector IS the merger). Vision values are [patches, d] (images of different sizes cannot stack).
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, InputError } from '../../errors';
import { parseQwen2VLProcessorConfig, qwen2vlPreprocess, qwen2vlProcessorConfig, qwenImageLayout, type QwenImageLayout } from '../../io/processors';
import type { ImagePrep, PrepAssets } from '../image-prep';
import { field, parseDecoderConfig, type DecoderConfig } from '../config';
import { Decoder, decoderHookNames, disposeDecoderWeights, loadDecoderWeights } from '../decoder';
import { RunContext, type HookPointInfo } from '../hooks';
import { activation, applyRope, layerNorm, linear } from '../layers';
import { ropeInvFreq } from '../rope';
import { scatterImageFeatures } from '../llava/model';
import { ModelBase, type Embedded, type ModelInputs } from '../model';
import {
  DEFAULT_STREAM_RULES,
  memoryPlanOf,
  readHost,
  residentProvider,
  streamedProvider,
  uploadHost,
  type HostTensor,
  type StreamRules,
  type WeightProvider,
} from '../streaming';
import { checkWeights, readTensor, type Expected, type WeightSource } from '../weights';

type Json = Record<string, unknown>;

export interface Qwen2VisionConfig {
  depth: number;
  embedDim: number;
  /** Output width of the merger = the decoder's hidden size. */
  hiddenSize: number;
  mlpHidden: number;
  numHeads: number;
  patchSize: number;
  temporalPatchSize: number;
  spatialMergeSize: number;
  inChannels: number;
  hiddenAct: string;
}

export interface Qwen2VLConfig {
  text: DecoderConfig;
  vision: Qwen2VisionConfig;
  imageTokenId: number;
  videoTokenId: number;
  visionStartTokenId: number;
}

/** The decoder's fields: top level in transformers 4.45, `text_config` (over top-level defaults) in newer files. */
export function qwen2VLTextConfig(raw: Json): Json {
  const nested = raw.text_config;
  if (nested && typeof nested === 'object') return { ...raw, ...(nested as Json) };
  return raw;
}

function posInt(cfg: Json, key: string, where: string, dflt: number): number {
  const v = field<number>(cfg, key, 'number', where, dflt);
  if (!Number.isInteger(v) || v <= 0) throw new ConfigError(`${where}: "${key}" must be a positive integer, got ${v}`);
  return v;
}

export function parseQwen2VLConfig(raw: Json): Qwen2VLConfig {
  const where = 'config.json';
  const text = parseDecoderConfig(qwen2VLTextConfig(raw), where);
  if (!text.mropeSection)
    throw new ConfigError(`${where}: Qwen2-VL needs rope_scaling.mrope_section (the t/h/w split of the rotary frequencies)`);
  const vc = field<Json>(raw, 'vision_config', 'object', where);
  const w = 'vision_config';
  const embedDim = posInt(vc, 'embed_dim', w, 1280);
  const numHeads = posInt(vc, 'num_heads', w, 16);
  if (embedDim % numHeads !== 0) throw new ConfigError(`${w}: embed_dim ${embedDim} is not divisible by num_heads ${numHeads}`);
  if ((embedDim / numHeads) % 4 !== 0)
    throw new ConfigError(`${w}: head dim ${embedDim / numHeads} must be a multiple of 4 (2-D rotary splits it into h and w halves)`);
  const mlpRatio = field<number>(vc, 'mlp_ratio', 'number', w, 4);
  const vision: Qwen2VisionConfig = {
    depth: posInt(vc, 'depth', w, 32),
    embedDim,
    hiddenSize: posInt(vc, 'hidden_size', w, text.hiddenSize),
    mlpHidden: Math.trunc(embedDim * mlpRatio),
    numHeads,
    patchSize: posInt(vc, 'patch_size', w, 14),
    temporalPatchSize: posInt(vc, 'temporal_patch_size', w, 2),
    spatialMergeSize: posInt(vc, 'spatial_merge_size', w, 2),
    // Released Qwen2-VL configs spell it in_chans (which HF ignores for the default of 3).
    inChannels: posInt(vc, 'in_channels', w, posInt(vc, 'in_chans', w, 3)),
    hiddenAct: field<string>(vc, 'hidden_act', 'string', w, 'quick_gelu'),
  };
  if (vision.hiddenSize !== text.hiddenSize)
    throw new ConfigError(`${w}: hidden_size ${vision.hiddenSize} (merger output) must equal the decoder's hidden_size ${text.hiddenSize}`);
  tf.tidy(() => activation(vision.hiddenAct, tf.scalar(0))).dispose(); // unsupported names fail here, at load
  return {
    text,
    vision,
    imageTokenId: field<number>(raw, 'image_token_id', 'number', where, 151655),
    videoTokenId: field<number>(raw, 'video_token_id', 'number', where, 151656),
    visionStartTokenId: field<number>(raw, 'vision_start_token_id', 'number', where, 151652),
  };
}

/** Decoder layers plus the vision blocks stream when over budget. */
export const QWEN2_VL_STREAM_RULES: StreamRules = {
  ...DEFAULT_STREAM_RULES,
  units: [...DEFAULT_STREAM_RULES.units, /^(visual\.blocks\.\d+)\./],
};

// ---------------------------------------------------------------------------------------------
// M-RoPE position ids (HF Qwen2VLForConditionalGeneration.get_rope_index, images only)

export interface RopeIndex {
  /** [3][B][T]: temporal, height, width streams; pads hold 1 as in HF. */
  positions: Int32Array[][];
  /** HF `rope_deltas`: decode position = cache index + delta. */
  ropeDeltas: number[];
  /** The same offset counted from real tokens (what ModelBase.generate adds): ropeDelta + T - realTokens. */
  decodeDelta: number[];
}

export interface RopeTokens {
  imageTokenId: number;
  videoTokenId: number;
  visionStartTokenId: number;
  spatialMergeSize: number;
}

/**
 * Three-stream position ids. Text advances all streams together; an image (a vision_start token followed by
 * image tokens) takes t/h/w grid coordinates offset by the position it starts at, and the text after it
 * restarts at (largest position so far) + 1. Padding (mask 0) is skipped and gets position 1.
 * Images are consumed from `grids` in row-major order, as their features are.
 */
export function qwen2VLRopeIndex(
  ids: number[][],
  mask: number[][] | undefined,
  grids: readonly (readonly [number, number, number])[] | undefined,
  tok: RopeTokens,
): RopeIndex {
  const B = ids.length;
  const T = ids[0].length;
  const m = mask ?? ids.map((r) => r.map(() => 1));
  const positions = [0, 1, 2].map(() => ids.map(() => new Int32Array(T).fill(1)));
  const ropeDeltas: number[] = [];
  const decodeDelta: number[] = [];
  if (!grids) {
    // HF's text-only branch: cumsum(mask) - 1 on every stream; its max includes the pads' 1.
    for (let b = 0; b < B; b++) {
      let c = 0;
      let max = -Infinity;
      let real = 0;
      for (let t = 0; t < T; t++) {
        const p = m[b][t] ? c : 1;
        if (m[b][t]) {
          c++;
          real++;
        }
        for (const s of positions) s[b][t] = p;
        max = Math.max(max, p);
      }
      ropeDeltas.push(max + 1 - T);
      decodeDelta.push(max + 1 - real);
    }
    return { positions, ropeDeltas, decodeDelta };
  }
  const M = tok.spatialMergeSize;
  let imageIndex = 0;
  for (let b = 0; b < B; b++) {
    const where: number[] = [];
    for (let t = 0; t < T; t++) if (m[b][t]) where.push(t);
    const toks = where.map((t) => ids[b][t]);
    let images = 0;
    for (let i = 0; i + 1 < toks.length; i++)
      if (toks[i] === tok.visionStartTokenId) {
        if (toks[i + 1] === tok.imageTokenId) images++;
        else if (toks[i + 1] === tok.videoTokenId)
          throw new InputError(`row ${b} has a video (vision_start followed by video token ${tok.videoTokenId}); videos are not supported yet`);
      }
    const out: [number, number, number][] = [];
    let st = 0;
    let next = 0; // largest position so far + 1
    for (let k = 0; k < images; k++) {
      const ed = toks.indexOf(tok.imageTokenId, st);
      const g = grids[imageIndex];
      if (!g) throw new InputError(`the prompt has more images than imageGridThw (${grids.length} grids)`);
      imageIndex++;
      const [gt, gh0, gw0] = g;
      if (gh0 % M !== 0 || gw0 % M !== 0)
        throw new InputError(`imageGridThw ${JSON.stringify(g)}: h and w must be multiples of spatial_merge_size ${M}`);
      const gh = gh0 / M;
      const gw = gw0 / M;
      const n = gt * gh * gw;
      for (let i = ed; i < ed + n; i++)
        if (toks[i] !== tok.imageTokenId)
          throw new InputError(
            `row ${b}: image ${imageIndex - 1} (grid ${g.join('x')}) needs ${n} consecutive image tokens (id ${tok.imageTokenId}) but the run is shorter`,
          );
      for (let i = st; i < ed; i++) out.push([next + i - st, next + i - st, next + i - st]);
      const base = next + ed - st;
      for (let a = 0; a < gt; a++) for (let r = 0; r < gh; r++) for (let c = 0; c < gw; c++) out.push([base + a, base + r, base + c]);
      next = base + Math.max(gt, gh, gw);
      st = ed + n;
    }
    for (let i = st; i < toks.length; i++) out.push([next + i - st, next + i - st, next + i - st]);
    const max = out.reduce((a, p) => Math.max(a, p[0], p[1], p[2]), -1);
    where.forEach((t, j) => {
      for (let s = 0; s < 3; s++) positions[s][b][t] = out[j][s];
    });
    ropeDeltas.push(max + 1 - T);
    decodeDelta.push(max + 1 - where.length);
  }
  return { positions, ropeDeltas, decodeDelta };
}

// ---------------------------------------------------------------------------------------------
// Vision tower

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

interface VisionWeights {
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

function loadVisionWeights(src: WeightSource, c: Qwen2VisionConfig): VisionWeights {
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
        parts.push(tf.matMul(tf.softmax(tf.div(tf.matMul(qh, kT), scale), -1), vh));
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

// ---------------------------------------------------------------------------------------------
// The model

export interface QwenImageSpan {
  image: number;
  row: number;
  start: number;
  length: number;
  layout: QwenImageLayout;
}

export class Qwen2VLModel extends ModelBase {
  /** Qwen2-VL's ChatML with vision markers (PopVQA authors' setup.py:132-133). */
  override get defaultTemplate(): string {
    return 'chatml-qwen2vl';
  }

  /** Dynamic resolution, flattened patches in merge-window order, one token per merged 2x2 cell. */
  override imagePrep(assets: PrepAssets): ImagePrep {
    const v = this.config.vision;
    const base = { patchSize: v.patchSize, temporalPatchSize: v.temporalPatchSize, mergeSize: v.spatialMergeSize };
    const cfg = assets.preprocessor ? { ...parseQwen2VLProcessorConfig(assets.preprocessor), ...base } : qwen2vlProcessorConfig(base);
    return {
      prepare: (img) => {
        const p = qwen2vlPreprocess(img, cfg);
        return { pixels: { data: p.pixelValues, shape: p.shape, gridThw: p.gridThw }, numTokens: p.numTokens, layout: qwenImageLayout(p.gridThw, cfg.mergeSize) };
      },
    };
  }

  readonly family: string = 'qwen2_vl';
  readonly kind = 'vlm' as const;
  override readonly imageTokenIndex: number;

  constructor(
    readonly config: Qwen2VLConfig,
    decoder: Decoder,
    readonly vision: Qwen2VisionTower,
  ) {
    super(config.text, decoder);
    this.imageTokenIndex = config.imageTokenId;
  }

  static load(src: WeightSource, raw: Record<string, unknown>): Qwen2VLModel {
    const config = parseQwen2VLConfig(raw);
    const vw = loadVisionWeights(src, config.vision);
    const vision = new Qwen2VisionTower(config.vision, vw);
    try {
      const dw = loadDecoderWeights(src, config.text, 'model.', 'lm_head.weight');
      return new Qwen2VLModel(config, new Decoder(config.text, dw), vision);
    } catch (e) {
      vision.dispose();
      throw e;
    }
  }

  private get ropeTokens(): RopeTokens {
    const c = this.config;
    return {
      imageTokenId: c.imageTokenId,
      videoTokenId: c.videoTokenId,
      visionStartTokenId: c.visionStartTokenId,
      spatialMergeSize: c.vision.spatialMergeSize,
    };
  }

  /** M-RoPE position ids and decode deltas for a prompt (HF get_rope_index). */
  ropeIndex(inputs: Pick<ModelInputs, 'inputIds' | 'attentionMask' | 'imageGridThw'>): RopeIndex {
    return qwen2VLRopeIndex(inputs.inputIds, inputs.attentionMask, inputs.imageGridThw, this.ropeTokens);
  }

  /** Image tokens of an image with patch grid [t, h, w]. */
  tokensFor(gridThw: readonly [number, number, number]): number {
    const l = qwenImageLayout(gridThw, this.config.vision.spatialMergeSize);
    return l.t * l.h * l.w;
  }

  /** Where each image's tokens are in `inputIds`, with the merged grid they come from (row-major). */
  imageSpans(inputIds: number[][], grids: readonly (readonly [number, number, number])[]): QwenImageSpan[] {
    const spans: QwenImageSpan[] = [];
    let k = 0;
    for (const [row, ids] of inputIds.entries()) {
      let t = 0;
      while (t < ids.length) {
        if (ids[t] !== this.imageTokenIndex) {
          t++;
          continue;
        }
        let left = ids.length - t;
        while (left > 0 && k < grids.length) {
          const layout = qwenImageLayout(grids[k], this.config.vision.spatialMergeSize);
          const n = layout.t * layout.h * layout.w;
          if (ids.slice(t, t + n).some((x) => x !== this.imageTokenIndex) || t + n > ids.length)
            throw new InputError(`row ${row}: image ${k} needs ${n} consecutive image tokens from token ${t}`);
          spans.push({ image: k++, row, start: t, length: n, layout });
          t += n;
          left = ids[t] === this.imageTokenIndex ? ids.length - t : 0;
        }
        if (left > 0) throw new InputError(`the prompt has more image tokens than the ${grids.length} image grid(s) cover`);
      }
    }
    if (k < grids.length) throw new InputError(`the prompt has image tokens for ${k} of the ${grids.length} image grids`);
    return spans;
  }

  hookPoints(): HookPointInfo[] {
    const out: HookPointInfo[] = [{ name: 'vision.embed', axes: ['patch', 'd_vision'], part: 'vision' }];
    for (let i = 0; i < this.config.vision.depth; i++)
      for (const k of ['resid_pre', 'attn_out', 'mlp_out', 'resid_post'])
        out.push({ name: `vision.blocks.${i}.${k}`, axes: ['patch', 'd_vision'], part: 'vision', layer: i });
    out.push(
      { name: 'vision.features', axes: ['patch', 'd_vision'], part: 'vision' },
      { name: 'projector.out', axes: ['image_token', 'd_model'], part: 'projector' },
      ...decoderHookNames(this.text),
    );
    return out;
  }

  /** Flattened patches + grids → merged image tokens [tokens, D] (vision and projector hooks fire). */
  encodeImages(pixels: tf.Tensor, grids: readonly (readonly [number, number, number])[], ctx: RunContext = new RunContext()): tf.Tensor {
    return this.vision.forward(pixels, grids, ctx);
  }

  private positionsFor(inputs: ModelInputs, mask: number[][]): { positions: Int32Array[][]; decodeDelta: number[] } {
    if (!inputs.positionIds) {
      const hasImageTokens = inputs.inputIds.some((r) => r.includes(this.imageTokenIndex));
      if (hasImageTokens && !inputs.imageGridThw)
        throw new InputError('the prompt has image tokens: give imageGridThw (patch grid per image) so M-RoPE positions can be computed');
      const r = qwen2VLRopeIndex(inputs.inputIds, mask, inputs.imageGridThw, this.ropeTokens);
      return { positions: r.positions, decodeDelta: r.decodeDelta };
    }
    const p = inputs.positionIds;
    const B = inputs.inputIds.length;
    const T = inputs.inputIds[0].length;
    const three = (Array.isArray(p[0][0]) ? (p as number[][][]) : [0, 1, 2].map(() => p as number[][])).map((s) => s.map((r) => Int32Array.from(r)));
    if (three.length !== 3 || three.some((s) => s.length !== B || s.some((r) => r.length !== T)))
      throw new InputError(`Qwen2-VL positionIds must be [3][${B}][${T}] (t/h/w streams) or [${B}][${T}]`);
    const decodeDelta = mask.map((row, b) => {
      let max = -Infinity;
      let real = 0;
      row.forEach((v, t) => {
        if (!v) return;
        real++;
        for (const s of three) max = Math.max(max, s[b][t]);
      });
      return max + 1 - real;
    });
    return { positions: three, decodeDelta };
  }

  protected override positionsOnly(inputs: ModelInputs, mask: number[][]): Embedded {
    const { positions, decodeDelta } = this.positionsFor(inputs, mask);
    return { embeds: tf.zeros([0]), positions, decodeDelta };
  }

  protected embedInputs(inputs: ModelInputs, mask: number[][], ctx: RunContext): Embedded {
    const ids = inputs.inputIds;
    const img = this.imageTokenIndex;
    const nImageTokens = ids.reduce((a, r) => a + r.filter((t) => t === img).length, 0);
    const { positions, decodeDelta } = this.positionsFor(inputs, mask);
    let features: tf.Tensor | null = null;
    if (inputs.imageFeatures) features = inputs.imageFeatures.reshape([-1, this.dModel]);
    else if (inputs.pixelValues) {
      if (!inputs.imageGridThw) throw new InputError('Qwen2-VL needs imageGridThw ([t, h, w] patch grid per image) with pixelValues');
      const want = inputs.imageGridThw.reduce((a, g) => a + this.tokensFor(g), 0);
      if (want !== nImageTokens)
        throw new InputError(
          `the prompt has ${nImageTokens} image tokens (id ${img}) but the image grids give ${want} ` +
            `(${inputs.imageGridThw.map((g) => `${g.join('x')} → ${this.tokensFor(g)}`).join(', ')})`,
        );
      features = this.encodeImages(inputs.pixelValues, inputs.imageGridThw, ctx);
    }
    const nFeat = features ? features.shape[0] : 0;
    if (nFeat !== nImageTokens)
      throw new InputError(
        `the prompt has ${nImageTokens} image tokens (id ${img}) but ${nFeat} image features were given` + (features ? '' : ' (no pixel_values)'),
      );
    const textIds = ids.map((r) => r.map((t) => (t === img ? 0 : t)));
    let embeds = this.decoder.embed(textIds);
    if (features) embeds = scatterImageFeatures(embeds, ids, img, features);
    return { embeds, positions, decodeDelta };
  }

  dispose(): void {
    disposeDecoderWeights(this.decoder.w);
    this.vision.dispose();
  }
}
