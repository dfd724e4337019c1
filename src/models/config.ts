// Typed, validated model configs read from HF config.json. Errors name the field, the value and what is allowed.
import { ConfigError } from '../errors';
import { parseRopeScaling, type RopeScaling } from './rope';

type Json = Record<string, unknown>;

export function field<T>(cfg: Json, key: string, kind: 'number' | 'string' | 'boolean' | 'object', where: string, dflt?: T): T {
  const v = cfg[key];
  if (v === undefined || v === null) {
    if (dflt !== undefined) return dflt;
    throw new ConfigError(`${where}: config field "${key}" is missing`);
  }
  if (typeof v !== kind) throw new ConfigError(`${where}: config field "${key}" must be a ${kind}, got ${JSON.stringify(v)}`);
  return v as T;
}

export function positiveInt(cfg: Json, key: string, where: string, dflt?: number): number {
  const v = field<number>(cfg, key, 'number', where, dflt);
  if (!Number.isInteger(v) || v <= 0) throw new ConfigError(`${where}: "${key}" must be a positive integer, got ${v}`);
  return v;
}

/** Decoder-only LM (Llama, Mistral, Qwen2; Qwen2-VL's text model with M-RoPE). */
export interface DecoderConfig {
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  hiddenAct: string;
  /** q/k/v projections carry a bias (Qwen2) or not (Llama). */
  qkvBias: boolean;
  tieWordEmbeddings: boolean;
  /** Qwen2-VL M-RoPE: frequency sections for the (t, h, w) position streams. */
  mropeSection?: number[];
  /** HF `rope_scaling` (Llama-3.1 `llama3`, linear, dynamic NTK, YaRN); `{type: 'default'}` when absent. */
  ropeScaling: RopeScaling;
  bosTokenId?: number;
  eosTokenId?: number | number[];
  padTokenId?: number;
}

const DECODER_TYPES = ['llama', 'mistral', 'qwen2', 'qwen2_vl', 'qwen2_vl_text', 'mllama_text_model'];

/**
 * The defaults of transformers' config classes. HF's save_pretrained omits fields equal to the class default,
 * so real checkpoints (llava-hf/llava-1.5-7b-hf's text_config has no hidden_size) depend on them.
 */
const DECODER_DEFAULTS: Record<string, Record<string, number | string | boolean>> = {
  llama: { vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, rms_norm_eps: 1e-6, rope_theta: 10000, hidden_act: 'silu', tie_word_embeddings: false },
  mistral: { vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, rms_norm_eps: 1e-6, rope_theta: 10000, hidden_act: 'silu', tie_word_embeddings: false },
  qwen2: { vocab_size: 151936, hidden_size: 4096, intermediate_size: 22016, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, rms_norm_eps: 1e-6, rope_theta: 10000, hidden_act: 'silu', tie_word_embeddings: false },
};
DECODER_DEFAULTS.qwen2_vl = { ...DECODER_DEFAULTS.qwen2, vocab_size: 152064, hidden_size: 8192, intermediate_size: 29568, num_hidden_layers: 80, num_attention_heads: 64, num_key_value_heads: 8, rms_norm_eps: 1e-5, rope_theta: 1000000 };
DECODER_DEFAULTS.qwen2_vl_text = DECODER_DEFAULTS.qwen2_vl;
// MllamaTextConfig (Llama-3.2-11B-Vision's text model); its cross-attention layers are read by src/models/mllama.
DECODER_DEFAULTS.mllama_text_model = { ...DECODER_DEFAULTS.llama, vocab_size: 128256, intermediate_size: 14336, num_hidden_layers: 40, num_key_value_heads: 8, rms_norm_eps: 1e-5, rope_theta: 500000, max_position_embeddings: 131072 };

const VISION_DEFAULTS: Record<string, Record<string, number | string>> = {
  clip_vision_model: { hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12, image_size: 224, patch_size: 32, num_channels: 3 },
  siglip_vision_model: { hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12, image_size: 224, patch_size: 16, num_channels: 3 },
};

export function withDefaults(cfg: Json, defaults: Record<string, unknown> | undefined): Json {
  return defaults ? { ...defaults, ...Object.fromEntries(Object.entries(cfg).filter(([, v]) => v !== null && v !== undefined)) } : cfg;
}

export function parseDecoderConfig(raw: Json, where = 'text_config'): DecoderConfig {
  const modelType = field<string>(raw, 'model_type', 'string', where, 'llama');
  if (!DECODER_TYPES.includes(modelType))
    throw new ConfigError(`${where}: model_type "${modelType}" is not a supported decoder (supported: ${DECODER_TYPES.join(', ')})`);
  const cfg = withDefaults(raw, DECODER_DEFAULTS[modelType]);
  const hiddenSize = positiveInt(cfg, 'hidden_size', where);
  const numHeads = positiveInt(cfg, 'num_attention_heads', where);
  const numKvHeads = positiveInt(cfg, 'num_key_value_heads', where, numHeads);
  const headDim = positiveInt(cfg, 'head_dim', where, Math.floor(hiddenSize / numHeads));
  if (numHeads % numKvHeads !== 0)
    throw new ConfigError(`${where}: num_attention_heads (${numHeads}) must be divisible by num_key_value_heads (${numKvHeads})`);
  if (headDim % 2 !== 0) throw new ConfigError(`${where}: head_dim must be even for RoPE, got ${headDim}`);
  const scaling = cfg.rope_scaling as Json | null | undefined;
  let mropeSection: number[] | undefined;
  if (scaling && typeof scaling === 'object' && Array.isArray(scaling.mrope_section)) mropeSection = (scaling.mrope_section as number[]).map(Number);
  const ropeScaling = mropeSection
    ? ({ type: 'default' } as const)
    : parseRopeScaling(scaling, positiveInt(cfg, 'max_position_embeddings', where, 2048), where);
  if (mropeSection && mropeSection.reduce((a, b) => a + b, 0) !== headDim / 2)
    throw new ConfigError(`${where}: mrope_section ${JSON.stringify(mropeSection)} must sum to head_dim/2 = ${headDim / 2}`);
  return {
    modelType,
    vocabSize: positiveInt(cfg, 'vocab_size', where),
    hiddenSize,
    intermediateSize: positiveInt(cfg, 'intermediate_size', where),
    numLayers: positiveInt(cfg, 'num_hidden_layers', where),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: field<number>(cfg, 'rms_norm_eps', 'number', where, 1e-6),
    ropeTheta: field<number>(cfg, 'rope_theta', 'number', where, 10000),
    hiddenAct: field<string>(cfg, 'hidden_act', 'string', where, 'silu'),
    qkvBias: modelType.startsWith('qwen2') || Boolean(cfg.attention_bias),
    tieWordEmbeddings: field<boolean>(cfg, 'tie_word_embeddings', 'boolean', where, false),
    mropeSection,
    ropeScaling,
    bosTokenId: cfg.bos_token_id as number | undefined,
    eosTokenId: cfg.eos_token_id as number | number[] | undefined,
    padTokenId: cfg.pad_token_id as number | undefined,
  };
}

/** ViT vision tower (CLIP or SigLIP). */
export interface VisionConfig {
  modelType: 'clip_vision_model' | 'siglip_vision_model';
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  imageSize: number;
  patchSize: number;
  numChannels: number;
  layerNormEps: number;
  hiddenAct: string;
}

export function parseVisionConfig(raw: Json, where = 'vision_config'): VisionConfig {
  const modelType = field<string>(raw, 'model_type', 'string', where, 'clip_vision_model');
  if (modelType !== 'clip_vision_model' && modelType !== 'siglip_vision_model')
    throw new ConfigError(`${where}: model_type "${modelType}" is not supported (supported: clip_vision_model, siglip_vision_model)`);
  const cfg = withDefaults(raw, VISION_DEFAULTS[modelType]);
  const siglip = modelType === 'siglip_vision_model';
  const hiddenSize = positiveInt(cfg, 'hidden_size', where);
  const numHeads = positiveInt(cfg, 'num_attention_heads', where);
  if (hiddenSize % numHeads !== 0)
    throw new ConfigError(`${where}: hidden_size (${hiddenSize}) must be divisible by num_attention_heads (${numHeads})`);
  const imageSize = positiveInt(cfg, 'image_size', where);
  const patchSize = positiveInt(cfg, 'patch_size', where);
  if (imageSize % patchSize !== 0) throw new ConfigError(`${where}: image_size ${imageSize} is not a multiple of patch_size ${patchSize}`);
  return {
    modelType,
    hiddenSize,
    intermediateSize: positiveInt(cfg, 'intermediate_size', where),
    numLayers: positiveInt(cfg, 'num_hidden_layers', where),
    numHeads,
    imageSize,
    patchSize,
    numChannels: positiveInt(cfg, 'num_channels', where, 3),
    layerNormEps: field<number>(cfg, 'layer_norm_eps', 'number', where, siglip ? 1e-6 : 1e-5),
    hiddenAct: field<string>(cfg, 'hidden_act', 'string', where, siglip ? 'gelu_pytorch_tanh' : 'quick_gelu'),
  };
}
