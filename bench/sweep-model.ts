// A small LLaVA-shaped model (12 decoder layers by default) with random weights, built in memory with
// memorySource: the bench needs no checkpoint on disk (bench/sweep.ts).
import { parseLlavaConfig, LlavaModel } from '../src/models/llava/model';
import { decoderExpected } from '../src/models/decoder-weights';
import { vitExpected } from '../src/models/vit';
import { memorySource } from '../src/models/weights';
import { randomArray } from './lib';

export interface BenchShape {
  layers: number;
  d: number;
  /** Decoder heads / KV heads / MLP width / vocabulary (defaults: 8 / 4 / 4d / 1000). */
  heads?: number;
  kvHeads?: number;
  inter?: number;
  vocab?: number;
  /** The CLIP tower (default: a 3-layer d-64 tower on 56 px images, patch 7). */
  vision?: { layers: number; d: number; heads: number; inter: number; imageSize: number; patch: number };
}

/** Image tokens per image: (image size / patch)², CLS dropped ('default' feature selection). */
export function imageTokens(shape: BenchShape): number {
  const v = shape.vision ?? DEFAULT_VISION;
  return (v.imageSize / v.patch) ** 2;
}

const DEFAULT_VISION = { layers: 3, d: 64, heads: 4, inter: 128, imageSize: 56, patch: 7 };

export const IMG = 999;

export function config(shape: BenchShape = { layers: 12, d: 256 }): Record<string, unknown> {
  const { layers: LAYERS, d: D } = shape;
  const v = shape.vision ?? DEFAULT_VISION;
  return {
    model_type: 'llava',
    image_token_index: IMG,
    vision_feature_layer: -2,
    vision_feature_select_strategy: 'default',
    projector_hidden_act: 'gelu',
    text_config: {
      model_type: 'llama', vocab_size: shape.vocab ?? 1000, hidden_size: D, intermediate_size: shape.inter ?? 4 * D, num_hidden_layers: LAYERS,
      num_attention_heads: shape.heads ?? 8, num_key_value_heads: shape.kvHeads ?? 4, rms_norm_eps: 1e-5, rope_theta: 10000, hidden_act: 'silu', eos_token_id: 2,
    },
    vision_config: {
      model_type: 'clip_vision_model', hidden_size: v.d, intermediate_size: v.inter, num_hidden_layers: v.layers, num_attention_heads: v.heads,
      image_size: v.imageSize, patch_size: v.patch, num_channels: 3, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5,
    },
  };
}

/** Every tensor the config of `shape` implies, with its shape. */
function expectedTensors(shape: BenchShape): { name: string; shape: number[] }[] {
  const D = shape.d;
  const cfg = parseLlavaConfig(config(shape));
  return [
    ...decoderExpected(cfg.text, 'language_model.model.', 'language_model.lm_head.weight'),
    ...vitExpected(cfg.vision, 'vision_tower.vision_model.', cfg.vision.numLayers - 1),
    { name: 'multi_modal_projector.linear_1.weight', shape: [D, cfg.vision.hiddenSize] },
    { name: 'multi_modal_projector.linear_1.bias', shape: [D] },
    { name: 'multi_modal_projector.linear_2.weight', shape: [D, D] },
    { name: 'multi_modal_projector.linear_2.bias', shape: [D] },
  ];
}

/** Parameters the model of `shape` loads (the tower's last layer is not loaded: features come from -2). */
export function parameterCount(shape: BenchShape): number {
  return expectedTensors(shape).reduce((a, e) => a + e.shape.reduce((x, y) => x * y, 1), 0);
}

/** Random weights (std 0.02; norms at 1) for every tensor the config implies, by checkpoint name. */
export function randomTensors(shape: BenchShape): Map<string, { shape: number[]; data: Float32Array }> {
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  expectedTensors(shape).forEach((e, i) => {
    const n = e.shape.reduce((a, b) => a * b, 1);
    const isNorm = /norm|layrnorm/.test(e.name) && e.name.endsWith('weight');
    // Uniform with std 0.02 (half-width 0.02·√3): the xorshift generator fills the 300 M weights of the
    // mid shapes in seconds, where Box-Muller took a minute.
    tensors.set(e.name, { shape: e.shape, data: isNorm ? new Float32Array(n).fill(1) : randomArray(n, 0.02 * Math.sqrt(3), 7919 * (i + 1)) });
  });
  return tensors;
}

/** A random LLaVA of `shape`, loaded from memory (no checkpoint on disk). */
export function randomModel(shape: BenchShape = { layers: 12, d: 256 }): LlavaModel {
  return LlavaModel.load(memorySource('bench (random weights)', randomTensors(shape)), config(shape));
}

/** Issue 20's mid shapes: CLIP ViT-B/14 at 224 px and a 12-layer Llama, d 1024, GQA 16/8 (bench:profile, bench:load). */
export const MID_SHAPE: BenchShape = {
  layers: 12, d: 1024, heads: 16, kvHeads: 8, inter: 2816, vocab: 32000,
  vision: { layers: 12, d: 768, heads: 12, inter: 3072, imageSize: 224, patch: 14 },
};
