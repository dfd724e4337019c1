// Pixtral configs: a `llava` config.json whose vision_config is a PixtralVisionConfig (native-resolution
// tower with 2-D RoPE) and whose text_config is Mistral (explicit head_dim, e.g. 128 ≠ 5120/32 in Pixtral-12B).
import { ConfigError } from '../../errors';
import { field, parseDecoderConfig, type DecoderConfig } from '../config';

type Json = Record<string, unknown>;

/** PixtralVisionConfig (transformers 4.45.2). */
export interface PixtralVisionConfig {
  modelType: 'pixtral';
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  headDim: number;
  /** Largest image side in pixels: the 2-D RoPE table covers (imageSize / patchSize)² grid cells. */
  imageSize: number;
  patchSize: number;
  numChannels: number;
  ropeTheta: number;
  hiddenAct: string;
}

/** PixtralVisionConfig's class defaults (save_pretrained omits fields equal to them). */
const DEFAULTS: Json = {
  hidden_size: 1024,
  intermediate_size: 4096,
  num_hidden_layers: 24,
  num_attention_heads: 16,
  num_channels: 3,
  image_size: 1024,
  patch_size: 16,
  hidden_act: 'gelu',
  rope_theta: 10000,
};

/** The RMSNorms of the tower have eps fixed at 1e-5 in HF's PixtralAttentionLayer and ln_pre (not a config field). */
export const PIXTRAL_NORM_EPS = 1e-5;

function posInt(cfg: Json, key: string, where: string): number {
  const v = cfg[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new ConfigError(`${where}: "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

export function isPixtralConfig(cfg: Json): boolean {
  const v = cfg.vision_config;
  return typeof v === 'object' && v !== null && (v as Json).model_type === 'pixtral';
}

export function parsePixtralVisionConfig(raw: Json, where = 'vision_config'): PixtralVisionConfig {
  const cfg: Json = { ...DEFAULTS, ...Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== null && v !== undefined)) };
  if (cfg.model_type !== 'pixtral') throw new ConfigError(`${where}: model_type must be "pixtral", got ${JSON.stringify(cfg.model_type)}`);
  const hiddenSize = posInt(cfg, 'hidden_size', where);
  const numHeads = posInt(cfg, 'num_attention_heads', where);
  if (hiddenSize % numHeads !== 0)
    throw new ConfigError(`${where}: hidden_size (${hiddenSize}) must be divisible by num_attention_heads (${numHeads})`);
  // HF 4.45.2 attends with hidden_size / heads but builds the RoPE table from head_dim: they must agree.
  const headDim = cfg.head_dim === undefined ? hiddenSize / numHeads : posInt(cfg, 'head_dim', where);
  if (headDim !== hiddenSize / numHeads)
    throw new ConfigError(`${where}: head_dim ${headDim} differs from hidden_size / num_attention_heads = ${hiddenSize / numHeads}; the Pixtral tower needs them equal`);
  if (headDim % 4 !== 0) throw new ConfigError(`${where}: head_dim ${headDim} must be a multiple of 4 (2-D RoPE splits the frequencies between rows and columns)`);
  const imageSize = posInt(cfg, 'image_size', where);
  const patchSize = posInt(cfg, 'patch_size', where);
  if (imageSize % patchSize !== 0) throw new ConfigError(`${where}: image_size ${imageSize} is not a multiple of patch_size ${patchSize}`);
  return {
    modelType: 'pixtral',
    hiddenSize,
    intermediateSize: posInt(cfg, 'intermediate_size', where),
    numLayers: posInt(cfg, 'num_hidden_layers', where),
    numHeads,
    headDim,
    imageSize,
    patchSize,
    numChannels: posInt(cfg, 'num_channels', where),
    ropeTheta: field<number>(cfg, 'rope_theta', 'number', where),
    hiddenAct: field<string>(cfg, 'hidden_act', 'string', where),
  };
}

export interface PixtralConfig {
  text: DecoderConfig;
  vision: PixtralVisionConfig;
  imageTokenIndex: number;
  /** Vision hidden-state indices (HF indexing, negatives from the end) whose features are concatenated. */
  featureLayers: number[];
  projectorAct: string;
}

export function parsePixtralConfig(cfg: Json, where = 'config.json'): PixtralConfig {
  const text = parseDecoderConfig(field(cfg, 'text_config', 'object', where), 'text_config');
  const vision = parsePixtralVisionConfig(field(cfg, 'vision_config', 'object', where), 'vision_config');
  const fl = cfg.vision_feature_layer ?? -1;
  const featureLayers = Array.isArray(fl) ? fl.map(Number) : [Number(fl)];
  for (const l of featureLayers)
    if (!Number.isInteger(l) || l < -(vision.numLayers + 1) || l > vision.numLayers)
      throw new ConfigError(`${where}: vision_feature_layer ${l} is outside the ${vision.numLayers + 1} vision hidden states`);
  // 'default' drops the first token as if it were CLIP's class token; a Pixtral tower has none, so that would
  // silently lose the top-left patch of the first image.
  const strategy = field<string>(cfg, 'vision_feature_select_strategy', 'string', where, 'full');
  if (strategy !== 'full')
    throw new ConfigError(`${where}: vision_feature_select_strategy "${strategy}" is not supported with a Pixtral tower (it has no class token; use "full")`);
  return {
    text,
    vision,
    imageTokenIndex: field<number>(cfg, 'image_token_index', 'number', where, 10),
    featureLayers,
    projectorAct: field<string>(cfg, 'projector_hidden_act', 'string', where, 'gelu'),
  };
}
