// LLaVA-1.5 (LlavaForConditionalGeneration): ViT tower → feature layer → MLP projector → image features
// scattered into the image-token slots of a Llama-family decoder.
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, InputError } from '../../errors';
import { field, parseDecoderConfig, parseVisionConfig, type DecoderConfig, type VisionConfig } from '../config';
import { Decoder, decoderHookNames, positionsFromMask } from '../decoder';
import { decoderExpected, disposeDecoderWeights, loadDecoderWeights } from '../decoder-weights';
import { RunContext, type HookPointInfo } from '../hooks';
import { activation, linear } from '../layers';
import { clipImageLayout, clipPreprocess, llava15ProcessorConfig, parseClipProcessorConfig } from '../../io/processors';
import type { ImagePrep, PrepAssets } from '../image-prep';
import { ModelBase, toInt32, type Embedded, type ModelInputs } from '../model';
import { VisionTransformer, disposeVitWeights, isSiglip, loadVitWeights, vitExpected, vitHookNames } from '../vit';
import { checkWeights, readTensor, type Expected, type WeightSource } from '../weights';

export interface LlavaConfig {
  text: DecoderConfig;
  vision: VisionConfig;
  imageTokenIndex: number;
  /** Hidden-state indices (HF indexing, negatives from the end) whose features are concatenated. */
  featureLayers: number[];
  strategy: 'default' | 'full';
  projectorAct: string;
}

export function parseLlavaConfig(cfg: Record<string, unknown>): LlavaConfig {
  const where = 'config.json';
  const text = parseDecoderConfig(field(cfg, 'text_config', 'object', where), 'text_config');
  const vision = parseVisionConfig(field(cfg, 'vision_config', 'object', where), 'vision_config');
  const fl = cfg.vision_feature_layer ?? -2;
  const featureLayers = Array.isArray(fl) ? fl.map(Number) : [Number(fl)];
  for (const l of featureLayers)
    if (!Number.isInteger(l) || l < -(vision.numLayers + 1) || l > vision.numLayers)
      throw new ConfigError(`${where}: vision_feature_layer ${l} is outside the ${vision.numLayers + 1} vision hidden states`);
  const strategy = field<string>(cfg, 'vision_feature_select_strategy', 'string', where, 'default');
  if (strategy !== 'default' && strategy !== 'full')
    throw new ConfigError(`${where}: vision_feature_select_strategy "${strategy}" is not supported (default, full)`);
  return {
    text,
    vision,
    imageTokenIndex: field<number>(cfg, 'image_token_index', 'number', where, 32000),
    featureLayers,
    strategy,
    projectorAct: field<string>(cfg, 'projector_hidden_act', 'string', where, 'gelu'),
  };
}

/** LlavaMultiModalProjector: linear_2(act(linear_1(x))), shared by every LLaVA-style family (CLIP, SigLIP, Pixtral towers). */
export interface ProjectorWeights {
  w1: tf.Tensor;
  b1: tf.Tensor;
  w2: tf.Tensor;
  b2: tf.Tensor;
}

/** The projector's tensors for vision width `Dv` → text width `D`. */
export function projectorExpected(D: number, Dv: number): Expected[] {
  return [
    { name: 'multi_modal_projector.linear_1.weight', shape: [D, Dv] },
    { name: 'multi_modal_projector.linear_1.bias', shape: [D] },
    { name: 'multi_modal_projector.linear_2.weight', shape: [D, D] },
    { name: 'multi_modal_projector.linear_2.bias', shape: [D] },
  ];
}

export function loadProjector(src: WeightSource): ProjectorWeights {
  return {
    w1: readTensor(src, 'multi_modal_projector.linear_1.weight', true),
    b1: readTensor(src, 'multi_modal_projector.linear_1.bias'),
    w2: readTensor(src, 'multi_modal_projector.linear_2.weight', true),
    b2: readTensor(src, 'multi_modal_projector.linear_2.bias'),
  };
}

export function applyProjector(x: tf.Tensor, p: ProjectorWeights, act: string): tf.Tensor {
  return linear(activation(act, linear(x, p.w1, p.b1)), p.w2, p.b2);
}

/**
 * Token embeddings with `features` [N, D] written into the image-token slots, after checking that the prompt
 * has exactly one image token per feature (`detail` explains the expected count in the error).
 */
export function embedWithImageFeatures(
  decoder: Decoder,
  inputs: ModelInputs,
  mask: number[][],
  imageToken: number,
  features: tf.Tensor | null,
  detail: string,
): Embedded {
  const ids = inputs.inputIds;
  const nImageTokens = ids.reduce((a, r) => a + r.filter((t) => t === imageToken).length, 0);
  const nFeat = features ? features.shape[0] : 0;
  if (nFeat !== nImageTokens)
    throw new InputError(
      `the prompt has ${nImageTokens} image tokens (id ${imageToken}) but the images give ${nFeat} features` + (features ? detail : ' (no pixel_values given)'),
    );
  const textIds = ids.map((r) => r.map((t) => (t === imageToken ? 0 : t)));
  let embeds = decoder.embed(textIds);
  if (features) embeds = scatterImageFeatures(embeds, ids, imageToken, features);
  const positions = inputs.positionIds ? toInt32(inputs.positionIds) : positionsFromMask(mask);
  return { embeds, positions };
}

export class LlavaModel extends ModelBase {
  readonly family: string = 'llava';
  readonly kind = 'vlm' as const;
  override readonly imageTokenIndex: number;
  readonly vision: VisionTransformer;
  /** Absolute hidden-state indices read for features; the tower runs only up to the largest. */
  readonly featureIndices: number[];

  constructor(
    readonly config: LlavaConfig,
    decoder: Decoder,
    vision: VisionTransformer,
    readonly projector: ProjectorWeights,
  ) {
    super(config.text, decoder);
    this.imageTokenIndex = config.imageTokenIndex;
    this.vision = vision;
    this.featureIndices = config.featureLayers.map((l) => (l < 0 ? config.vision.numLayers + 1 + l : l));
  }

  static load(src: WeightSource, raw: Record<string, unknown>): LlavaModel {
    const config = parseLlavaConfig(raw);
    const featureIndices = config.featureLayers.map((l) => (l < 0 ? config.vision.numLayers + 1 + l : l));
    const layersRun = Math.max(...featureIndices);
    const D = config.text.hiddenSize;
    const Dv = config.vision.hiddenSize * featureIndices.length;
    const textHead = 'language_model.lm_head.weight';
    // Check every tensor before reading any, so a mismatch reports all problems and allocates nothing.
    checkWeights(src, [
      ...vitExpected(config.vision, 'vision_tower.vision_model.', layersRun),
      ...projectorExpected(D, Dv),
      ...decoderExpected(config.text, 'language_model.model.', textHead),
    ]);
    const vw = loadVitWeights(src, config.vision, 'vision_tower.vision_model.', layersRun);
    const projector = loadProjector(src);
    const dw = loadDecoderWeights(src, config.text, 'language_model.model.', textHead);
    return new LlavaModel(config, new Decoder(config.text, dw), new VisionTransformer(config.vision, vw), projector);
  }

  /** LLaVA-1.5's USER/ASSISTANT format (PopVQA authors' setup.py:84-85). */
  override get defaultTemplate(): string {
    return 'llava-1.5';
  }

  /** CLIP (or SigLIP) preprocessing at the tower's size; a fixed number of tokens per image. */
  override imagePrep(assets: PrepAssets): ImagePrep {
    const v = this.config.vision;
    const cfg = assets.preprocessor ? parseClipProcessorConfig(assets.preprocessor) : llava15ProcessorConfig(v.imageSize);
    const layout = clipImageLayout(v.imageSize, v.patchSize, { strategy: this.config.strategy, hasCls: !isSiglip(v) });
    return {
      prepare: (img) => {
        const chw = clipPreprocess(img, cfg);
        return { pixels: { data: chw.data, shape: [1, chw.channels, chw.height, chw.width] }, numTokens: this.tokensPerImage, layout };
      },
    };
  }

  get tokensPerImage(): number {
    const n = (this.config.vision.imageSize / this.config.vision.patchSize) ** 2;
    return this.config.strategy === 'full' && !isSiglip(this.config.vision) ? n + 1 : n;
  }

  hookPoints(): HookPointInfo[] {
    return [
      ...vitHookNames(this.config.vision, Math.max(...this.featureIndices)),
      { name: 'vision.features', axes: ['image', 'patch', 'd_vision'], part: 'vision' },
      { name: 'projector.out', axes: ['image', 'patch', 'd_model'], part: 'projector' },
      ...decoderHookNames(this.text),
    ];
  }

  /** pixels [N, C, H, W] → projected features [N, tokens, D] (with the vision and projector hooks). */
  encodeImages(pixels: tf.Tensor, ctx: RunContext = new RunContext()): tf.Tensor {
    const { vision } = this.config;
    if (pixels.rank !== 4 || pixels.shape[1] !== vision.numChannels || pixels.shape[2] !== vision.imageSize || pixels.shape[3] !== vision.imageSize)
      throw new InputError(
        `pixel_values must be [images, ${vision.numChannels}, ${vision.imageSize}, ${vision.imageSize}], got [${pixels.shape}]`,
      );
    const states = this.vision.forward(pixels, Math.max(...this.featureIndices), ctx);
    let feats = this.featureIndices.length === 1 ? states[this.featureIndices[0]] : tf.concat(this.featureIndices.map((i) => states[i]), -1);
    if (this.config.strategy === 'default' && !isSiglip(vision)) feats = feats.slice([0, 1, 0], [-1, -1, -1]);
    feats = ctx.point('vision.features', feats);
    return ctx.point('projector.out', applyProjector(feats, this.projector, this.config.projectorAct));
  }

  protected embedInputs(inputs: ModelInputs, mask: number[][], ctx: RunContext): Embedded {
    let features: tf.Tensor | null = null;
    if (inputs.imageFeatures) features = inputs.imageFeatures.reshape([-1, this.dModel]);
    else if (inputs.pixelValues) features = this.encodeImages(inputs.pixelValues, ctx).reshape([-1, this.dModel]);
    return embedWithImageFeatures(this.decoder, inputs, mask, this.imageTokenIndex, features, ` (${this.tokensPerImage} per image)`);
  }

  dispose(): void {
    disposeDecoderWeights(this.decoder.w);
    disposeVitWeights(this.vision.w);
    tf.dispose(Object.values(this.projector));
  }
}

/**
 * Writes features [N, D] into the image-token slots of embeds [B, T, D] in row-major (batch, position) order.
 * Built from slices and concats (not scatter/gather) so gradients flow on every backend.
 */
export function scatterImageFeatures(embeds: tf.Tensor, ids: number[][], imageToken: number, features: tf.Tensor): tf.Tensor {
  const [B, T, D] = embeds.shape as number[];
  let cursor = 0;
  const rows: tf.Tensor[] = [];
  for (let b = 0; b < B; b++) {
    const pieces: tf.Tensor[] = [];
    let t = 0;
    while (t < T) {
      const isImg = ids[b][t] === imageToken;
      let e = t;
      while (e < T && (ids[b][e] === imageToken) === isImg) e++;
      if (isImg) {
        pieces.push(features.slice([cursor, 0], [e - t, D]));
        cursor += e - t;
      } else pieces.push(embeds.slice([b, t, 0], [1, e - t, D]).reshape([e - t, D]));
      t = e;
    }
    rows.push(pieces.length === 1 ? pieces[0] : tf.concat(pieces, 0));
  }
  return tf.stack(rows, 0);
}
