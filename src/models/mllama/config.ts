// Llama-3.2-Vision (MllamaForConditionalGeneration) config: the text decoder with its cross-attention layer
// indices, and the tiled vision encoder. Defaults are transformers 4.45.2's MllamaTextConfig / MllamaVisionConfig
// (save_pretrained omits fields equal to them).
import { ConfigError } from '../../errors';
import { field, parseDecoderConfig, positiveInt, withDefaults, type DecoderConfig } from '../config';

type Json = Record<string, unknown>;

export interface MllamaVisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHeads: number;
  /** Local (ungated) layers, then gated global layers. */
  numLayers: number;
  numGlobalLayers: number;
  imageSize: number;
  patchSize: number;
  numChannels: number;
  maxNumTiles: number;
  normEps: number;
  hiddenAct: string;
  /** Local-encoder hidden states (HF indexing: 0 = its input) appended to the final output, interleaved. */
  intermediateLayers: number[];
  visionOutputDim: number;
  /** (tiles high, tiles wide) per aspect-ratio id − 1 (id 0 = padding image). */
  supportedAspectRatios: [number, number][];
}

export interface MllamaConfig {
  text: DecoderConfig;
  vision: MllamaVisionConfig;
  /** Decoder layers that are gated cross-attention layers (no self-attention, no RoPE). */
  crossAttentionLayers: number[];
  imageTokenIndex: number;
}

const VISION_DEFAULTS: Json = {
  hidden_size: 1280,
  hidden_act: 'gelu',
  num_hidden_layers: 32,
  num_global_layers: 8,
  attention_heads: 16,
  num_channels: 3,
  intermediate_size: 5120,
  vision_output_dim: 7680,
  image_size: 448,
  patch_size: 14,
  norm_eps: 1e-5,
  max_num_tiles: 4,
  intermediate_layers_indices: [3, 7, 15, 23, 30],
  supported_aspect_ratios: [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1], [4, 1]],
};

function intList(v: unknown, key: string, where: string): number[] {
  if (!Array.isArray(v) || v.some((x) => !Number.isInteger(x) || x < 0)) throw new ConfigError(`${where}: "${key}" must be a list of non-negative integers, got ${JSON.stringify(v)}`);
  return v as number[];
}

export function parseMllamaVisionConfig(raw: Json, where = 'vision_config'): MllamaVisionConfig {
  const cfg = withDefaults(raw, VISION_DEFAULTS);
  const hiddenSize = positiveInt(cfg, 'hidden_size', where);
  const numHeads = positiveInt(cfg, 'attention_heads', where);
  if (hiddenSize % numHeads !== 0) throw new ConfigError(`${where}: hidden_size (${hiddenSize}) must be divisible by attention_heads (${numHeads})`);
  const imageSize = positiveInt(cfg, 'image_size', where);
  const patchSize = positiveInt(cfg, 'patch_size', where);
  if (imageSize % patchSize !== 0) throw new ConfigError(`${where}: image_size ${imageSize} is not a multiple of patch_size ${patchSize}`);
  const numLayers = positiveInt(cfg, 'num_hidden_layers', where);
  const intermediateLayers = intList(cfg.intermediate_layers_indices, 'intermediate_layers_indices', where);
  for (const l of intermediateLayers)
    if (l > numLayers) throw new ConfigError(`${where}: intermediate_layers_indices has ${l}, but the local encoder has only ${numLayers + 1} hidden states`);
  const visionOutputDim = positiveInt(cfg, 'vision_output_dim', where);
  if (visionOutputDim !== hiddenSize * (1 + intermediateLayers.length))
    throw new ConfigError(`${where}: vision_output_dim ${visionOutputDim} must be hidden_size × (1 + intermediate layers) = ${hiddenSize * (1 + intermediateLayers.length)}`);
  const ratios = cfg.supported_aspect_ratios;
  if (!Array.isArray(ratios) || ratios.some((r) => !Array.isArray(r) || r.length !== 2))
    throw new ConfigError(`${where}: supported_aspect_ratios must be a list of [tiles high, tiles wide], got ${JSON.stringify(ratios)}`);
  return {
    hiddenSize,
    intermediateSize: positiveInt(cfg, 'intermediate_size', where),
    numHeads,
    numLayers,
    numGlobalLayers: positiveInt(cfg, 'num_global_layers', where),
    imageSize,
    patchSize,
    numChannels: positiveInt(cfg, 'num_channels', where),
    maxNumTiles: positiveInt(cfg, 'max_num_tiles', where),
    normEps: field<number>(cfg, 'norm_eps', 'number', where),
    hiddenAct: field<string>(cfg, 'hidden_act', 'string', where),
    intermediateLayers,
    visionOutputDim,
    supportedAspectRatios: ratios as [number, number][],
  };
}

export function parseMllamaConfig(raw: Json): MllamaConfig {
  const where = 'config.json';
  const rawText = field<Json>(raw, 'text_config', 'object', where);
  const text = parseDecoderConfig({ ...rawText, model_type: rawText.model_type ?? 'mllama_text_model' }, 'text_config');
  const vision = parseMllamaVisionConfig(field<Json>(raw, 'vision_config', 'object', where));
  const crossAttentionLayers = intList(rawText.cross_attention_layers ?? [3, 8, 13, 18, 23, 28, 33, 38], 'cross_attention_layers', 'text_config');
  for (const l of crossAttentionLayers)
    if (l >= text.numLayers) throw new ConfigError(`text_config: cross_attention_layers has ${l}, but there are ${text.numLayers} layers`);
  return { text, vision, crossAttentionLayers, imageTokenIndex: field<number>(raw, 'image_token_index', 'number', where, 128256) };
}

/** Patches per tile including the class token (HF `num_patches`). */
export function patchesPerTile(v: MllamaVisionConfig): number {
  return (v.imageSize / v.patchSize) ** 2 + 1;
}
