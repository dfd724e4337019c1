// Qwen2-VL's config.json (transformers 4.45 Qwen2VLConfig): the Qwen2 decoder's fields (top level, or
// `text_config` in newer files), its M-RoPE split, the vision tower's and the vision token ids.
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '../../errors';
import { field, parseDecoderConfig, type DecoderConfig } from '../config';
import { activation } from '../layers';
import { DEFAULT_STREAM_RULES, type StreamRules } from '../memory-plan';

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
