// Llama-3.2-Vision's tiled vision encoder (HF MllamaVisionModel, transformers 4.45.2): each image is up to
// `max_num_tiles` square tiles; patches get a gated tile embedding per aspect ratio, a class token, gated patch +
// tile position embeddings; a local encoder then a gated global encoder run over ALL tiles of an image at once
// (patches padded to a multiple of 8); the output is the final state with chosen local hidden states appended.
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../../errors';
import { MASK_NEG } from '../decoder';
import { RunContext, type HookPointInfo } from '../hooks';
import { layerNorm, linear } from '../layers';
import { vitBlock, type VitLayer } from '../vit';
import { readFusedLinear, readTensor, type Expected, type WeightSource } from '../weights';
import { patchesPerTile, type MllamaVisionConfig } from './config';

interface GatedLayer extends VitLayer {
  gateAttn: tf.Tensor;
  gateFfn: tf.Tensor;
}

export interface MllamaVisionWeights {
  /** [C·p·p, D]: the bias-free patch convolution as one matMul. */
  patch: tf.Tensor;
  classEmbedding: tf.Tensor;
  posGate: tf.Tensor;
  /** [patches + 1, D] */
  posEmbedding: tf.Tensor;
  /** [aspect ids, tiles · (patches + 1) · D] */
  tilePosEmbedding: tf.Tensor;
  preTileGate: tf.Tensor;
  preTileEmbedding: tf.Tensor;
  postTileGate: tf.Tensor;
  postTileEmbedding: tf.Tensor;
  lnPreW: tf.Tensor;
  lnPreB: tf.Tensor;
  lnPostW: tf.Tensor;
  lnPostB: tf.Tensor;
  local: VitLayer[];
  global: GatedLayer[];
}

const P = 'vision_model.';

function layerExpected(v: MllamaVisionConfig, l: string, gated: boolean): Expected[] {
  const D = v.hiddenSize;
  const I = v.intermediateSize;
  const out: Expected[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj'].map((n) => ({ name: `${l}self_attn.${n}.weight`, shape: [D, D] }));
  out.push(
    { name: `${l}mlp.fc1.weight`, shape: [I, D] },
    { name: `${l}mlp.fc1.bias`, shape: [I] },
    { name: `${l}mlp.fc2.weight`, shape: [D, I] },
    { name: `${l}mlp.fc2.bias`, shape: [D] },
  );
  for (const n of ['input_layernorm', 'post_attention_layernorm']) out.push({ name: `${l}${n}.weight`, shape: [D] }, { name: `${l}${n}.bias`, shape: [D] });
  if (gated) out.push({ name: `${l}gate_attn`, shape: [1] }, { name: `${l}gate_ffn`, shape: [1] });
  return out;
}

export function mllamaVisionExpected(v: MllamaVisionConfig): Expected[] {
  const D = v.hiddenSize;
  const nIds = v.supportedAspectRatios.length + 1;
  const np = patchesPerTile(v);
  const out: Expected[] = [
    { name: `${P}class_embedding`, shape: [D] },
    { name: `${P}patch_embedding.weight`, shape: [D, v.numChannels, v.patchSize, v.patchSize] },
    { name: `${P}gated_positional_embedding.gate`, shape: [1] },
    { name: `${P}gated_positional_embedding.embedding`, shape: [np, D] },
    { name: `${P}gated_positional_embedding.tile_embedding.weight`, shape: [nIds, v.maxNumTiles * np * D] },
  ];
  for (const t of ['pre', 'post'])
    out.push({ name: `${P}${t}_tile_positional_embedding.gate`, shape: [1] }, { name: `${P}${t}_tile_positional_embedding.embedding.weight`, shape: [nIds, v.maxNumTiles * D] });
  for (const n of ['layernorm_pre', 'layernorm_post']) out.push({ name: `${P}${n}.weight`, shape: [D] }, { name: `${P}${n}.bias`, shape: [D] });
  for (let i = 0; i < v.numLayers; i++) out.push(...layerExpected(v, `${P}transformer.layers.${i}.`, false));
  for (let i = 0; i < v.numGlobalLayers; i++) out.push(...layerExpected(v, `${P}global_transformer.layers.${i}.`, true));
  return out;
}

function readLayer(src: WeightSource, l: string): VitLayer {
  const a = `${l}self_attn.`;
  return {
    ln1w: readTensor(src, `${l}input_layernorm.weight`),
    ln1b: readTensor(src, `${l}input_layernorm.bias`),
    qkv: readFusedLinear(src, [`${a}q_proj.weight`, `${a}k_proj.weight`, `${a}v_proj.weight`]),
    qkvBias: null,
    o: readTensor(src, `${a}o_proj.weight`, true),
    ob: null,
    ln2w: readTensor(src, `${l}post_attention_layernorm.weight`),
    ln2b: readTensor(src, `${l}post_attention_layernorm.bias`),
    fc1: readTensor(src, `${l}mlp.fc1.weight`, true),
    fc1b: readTensor(src, `${l}mlp.fc1.bias`),
    fc2: readTensor(src, `${l}mlp.fc2.weight`, true),
    fc2b: readTensor(src, `${l}mlp.fc2.bias`),
  };
}

/** Reads the tower (call after checkWeights on mllamaVisionExpected). */
export function loadMllamaVisionWeights(src: WeightSource, v: MllamaVisionConfig): MllamaVisionWeights {
  const D = v.hiddenSize;
  const conv = readTensor(src, `${P}patch_embedding.weight`);
  const patch = tf.tidy(() => conv.reshape([D, -1]).transpose());
  conv.dispose();
  const g = (n: string) => readTensor(src, `${P}${n}`);
  return {
    patch,
    classEmbedding: g('class_embedding'),
    posGate: g('gated_positional_embedding.gate'),
    posEmbedding: g('gated_positional_embedding.embedding'),
    tilePosEmbedding: g('gated_positional_embedding.tile_embedding.weight'),
    preTileGate: g('pre_tile_positional_embedding.gate'),
    preTileEmbedding: g('pre_tile_positional_embedding.embedding.weight'),
    postTileGate: g('post_tile_positional_embedding.gate'),
    postTileEmbedding: g('post_tile_positional_embedding.embedding.weight'),
    lnPreW: g('layernorm_pre.weight'),
    lnPreB: g('layernorm_pre.bias'),
    lnPostW: g('layernorm_post.weight'),
    lnPostB: g('layernorm_post.bias'),
    local: Array.from({ length: v.numLayers }, (_, i) => readLayer(src, `${P}transformer.layers.${i}.`)),
    global: Array.from({ length: v.numGlobalLayers }, (_, i) => {
      const l = `${P}global_transformer.layers.${i}.`;
      return { ...readLayer(src, l), gateAttn: readTensor(src, `${l}gate_attn`), gateFfn: readTensor(src, `${l}gate_ffn`) };
    }),
  };
}

export function disposeMllamaVisionWeights(w: MllamaVisionWeights): void {
  const { local, global, ...rest } = w;
  tf.dispose([...Object.values(rest), ...[...local, ...global].flatMap((l) => Object.values(l).filter((t): t is tf.Tensor => t != null))]);
}

export function mllamaVisionHookNames(v: MllamaVisionConfig): HookPointInfo[] {
  const axes = ['image', 'tile_patch', 'd_vision'];
  const out: HookPointInfo[] = [{ name: 'vision.embed', axes, part: 'vision' }];
  const block = (b: string, i: number) => ['resid_pre', 'attn_out', 'mlp_out', 'resid_post'].map((k) => ({ name: `${b}.${k}`, axes, part: 'vision' as const, layer: i }));
  for (let i = 0; i < v.numLayers; i++) out.push(...block(`vision.blocks.${i}`, i));
  for (let i = 0; i < v.numGlobalLayers; i++) out.push(...block(`vision.global.blocks.${i}`, v.numLayers + i));
  out.push({ name: 'vision.output', axes: ['batch', 'image', 'tile', 'patch', 'd_vision_out'], part: 'vision' });
  return out;
}

/** Per-image aspect-ratio inputs, validated against the tower. */
export interface TileInputs {
  /** [B][images] ids into supported_aspect_ratios (1-based; 0 = padding image). */
  aspectRatioIds: number[][];
  /** [B][images][tiles] 1 = a real tile. */
  aspectRatioMask: number[][][];
}

export class MllamaVisionTower {
  constructor(
    readonly cfg: MllamaVisionConfig,
    readonly w: MllamaVisionWeights,
  ) {}

  /** pixels [B, images, tiles, C, H, W] → vision_output [B, images, tiles, patches + 1, vision_output_dim]. */
  forward(pixels: tf.Tensor, tiles: TileInputs, ctx: RunContext): tf.Tensor {
    const { cfg, w } = this;
    const [B, M, Tt, C, Hh, Ww] = pixels.shape as number[];
    if (pixels.rank !== 6 || Tt !== cfg.maxNumTiles || C !== cfg.numChannels || Hh !== cfg.imageSize || Ww !== cfg.imageSize)
      throw new InputError(
        `pixel_values must be [batch, images, ${cfg.maxNumTiles} tiles, ${cfg.numChannels}, ${cfg.imageSize}, ${cfg.imageSize}] (MllamaImageProcessor pads to max_num_tiles), got [${pixels.shape}]`,
      );
    const ids = tiles.aspectRatioIds;
    const nIds = cfg.supportedAspectRatios.length + 1;
    if (ids.length !== B || ids.some((r) => r.length !== M || r.some((x) => !Number.isInteger(x) || x < 0 || x >= nIds)))
      throw new InputError(`aspect_ratio_ids must be [${B}][${M}] integers in [0, ${nIds}), got ${JSON.stringify(ids)}`);
    const am = tiles.aspectRatioMask;
    if (am.length !== B || am.some((r) => r.length !== M || r.some((t) => t.length !== Tt)))
      throw new InputError(`aspect_ratio_mask must be [${B}][${M}][${Tt}], got ${JSON.stringify(am)}`);
    const N = B * M;
    const D = cfg.hiddenSize;
    const p = cfg.patchSize;
    const g = cfg.imageSize / p;
    const np = g * g + 1;
    const idT = tf.tensor1d(ids.flat(), 'int32');
    // Patch embedding, then the gated pre-tile embedding of each image's aspect ratio, added to every patch of a tile.
    const patches = pixels.reshape([N * Tt, C, g, p, g, p]).transpose([0, 2, 4, 1, 3, 5]).reshape([N * Tt * g * g, C * p * p]);
    let x = linear(patches, w.patch).reshape([N, Tt, g * g, D]);
    x = tf.add(x, tf.mul(tf.tanh(w.preTileGate), tf.gather(w.preTileEmbedding, idT).reshape([N, Tt, 1, D])));
    x = tf.concat([tf.tile(w.classEmbedding.reshape([1, 1, 1, D]), [N, Tt, 1, 1]), x], 2);
    // Gated position embedding: (1 - tanh g)·patch positions + tanh g·tile positions of the aspect ratio.
    const gate = tf.tanh(w.posGate);
    x = tf.add(x, tf.mul(tf.sub(1, gate), w.posEmbedding.reshape([1, 1, np, D])));
    x = tf.add(x, tf.mul(gate, tf.gather(w.tilePosEmbedding, idT).reshape([N, Tt, np, D])));
    x = layerNorm(x, w.lnPreW, w.lnPreB, cfg.normEps);
    // Patches padded to a multiple of 8 (as HF); the padding and padded tiles are masked out below.
    const pad = (8 - (np % 8)) % 8;
    const npp = np + pad;
    if (pad) x = tf.concat([x, tf.zeros([N, Tt, pad, D])], 2);
    x = ctx.point('vision.embed', x.reshape([N, Tt * npp, D]));
    const mask = tileMask(am.flat(), Tt, np, npp);
    const local = { heads: cfg.numHeads, eps: cfg.normEps, act: cfg.hiddenAct, mask };
    const states = [x];
    for (let i = 0; i < cfg.numLayers; i++) {
      x = vitBlock(x, w.local[i], local, ctx, `vision.blocks.${i}`, i);
      states.push(x);
    }
    x = layerNorm(x, w.lnPostW, w.lnPostB, cfg.normEps).reshape([N, Tt, npp, D]);
    x = tf.add(x, tf.mul(tf.tanh(w.postTileGate), tf.gather(w.postTileEmbedding, idT).reshape([N, Tt, 1, D]))).reshape([N, Tt * npp, D]);
    for (let i = 0; i < cfg.numGlobalLayers; i++) {
      const l = w.global[i];
      x = vitBlock(x, l, { ...local, gateAttn: l.gateAttn, gateFfn: l.gateFfn }, ctx, `vision.global.blocks.${i}`, cfg.numLayers + i);
    }
    const unpad = (t: tf.Tensor, d: number) => t.reshape([N, Tt, npp, d]).slice([0, 0, 0, 0], [N, Tt, np, d]);
    // HF stacks the chosen hidden states on a last axis and flattens it: features interleave (d0·l0, d0·l1, ...).
    const L = cfg.intermediateLayers.length;
    const inter = L ? unpad(tf.stack(cfg.intermediateLayers.map((i) => states[i]), -1).reshape([N, Tt * npp, D * L]), D * L) : null;
    const out = inter ? tf.concat([unpad(x, D), inter], -1) : unpad(x, D);
    return ctx.point('vision.output', out.reshape([B, M, Tt, np, cfg.visionOutputDim]));
  }
}

/**
 * HF's _prepare_aspect_ratio_attention_mask: a token is "masked" when its tile is padding or it is a padding patch;
 * only pairs of masked tokens are blocked (real tokens still see padding, as in HF). [N, Tt·npp, Tt·npp].
 */
function tileMask(tileReal: number[][], Tt: number, np: number, npp: number): tf.Tensor {
  const S = Tt * npp;
  const N = tileReal.length;
  const m = new Float32Array(N * S * S);
  for (let n = 0; n < N; n++) {
    const masked = new Uint8Array(S);
    for (let t = 0; t < Tt; t++) for (let j = 0; j < npp; j++) masked[t * npp + j] = tileReal[n][t] === 0 || j >= np ? 1 : 0;
    for (let i = 0; i < S; i++) if (masked[i]) for (let k = 0; k < S; k++) if (masked[k]) m[(n * S + i) * S + k] = MASK_NEG;
  }
  return tf.tensor3d(m, [N, S, S]);
}
