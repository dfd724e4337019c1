// A small LLaVA-shaped model (12 decoder layers by default) with random weights, built in memory with
// memorySource: the bench needs no checkpoint on disk (bench/sweep.ts).
import { parseLlavaConfig, LlavaModel } from '../src/models/llava';
import { decoderExpected } from '../src/models/decoder';
import { vitExpected } from '../src/models/vit';
import { memorySource } from '../src/models/weights';
import { mulberry32 } from '../src/data/random';

export interface BenchShape {
  layers: number;
  d: number;
}

export const IMG = 999;

export function config(shape: BenchShape = { layers: 12, d: 256 }): Record<string, unknown> {
  const { layers: LAYERS, d: D } = shape;
  return {
    model_type: 'llava',
    image_token_index: IMG,
    vision_feature_layer: -2,
    vision_feature_select_strategy: 'default',
    projector_hidden_act: 'gelu',
    text_config: {
      model_type: 'llama', vocab_size: 1000, hidden_size: D, intermediate_size: 4 * D, num_hidden_layers: LAYERS,
      num_attention_heads: 8, num_key_value_heads: 4, rms_norm_eps: 1e-5, rope_theta: 10000, hidden_act: 'silu', eos_token_id: 2,
    },
    vision_config: {
      model_type: 'clip_vision_model', hidden_size: 64, intermediate_size: 128, num_hidden_layers: 3, num_attention_heads: 4,
      image_size: 56, patch_size: 7, num_channels: 3, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5,
    },
  };
}

/** Random weights (std 0.02; norms at 1) for every tensor the config implies. */
export function randomModel(shape: BenchShape = { layers: 12, d: 256 }): LlavaModel {
  const D = shape.d;
  const raw = config(shape);
  const cfg = parseLlavaConfig(raw);
  const rng = mulberry32(7);
  const gauss = () => Math.sqrt(-2 * Math.log(rng() + 1e-12)) * Math.cos(2 * Math.PI * rng());
  const expected = [
    ...decoderExpected(cfg.text, 'language_model.model.', 'language_model.lm_head.weight'),
    ...vitExpected(cfg.vision, 'vision_tower.vision_model.', cfg.vision.numLayers - 1),
    { name: 'multi_modal_projector.linear_1.weight', shape: [D, cfg.vision.hiddenSize] },
    { name: 'multi_modal_projector.linear_1.bias', shape: [D] },
    { name: 'multi_modal_projector.linear_2.weight', shape: [D, D] },
    { name: 'multi_modal_projector.linear_2.bias', shape: [D] },
  ];
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const e of expected) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    const isNorm = /norm|layrnorm/.test(e.name) && e.name.endsWith('weight');
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = isNorm ? 1 : 0.02 * gauss();
    tensors.set(e.name, { shape: e.shape, data });
  }
  return LlavaModel.load(memorySource('bench (random weights)', tensors), raw);
}

