// Trained parameters -> a HuggingFace LLaVA-1.5 folder (config.json, model.safetensors, tokenizer, processor
// and generation configs) that loadModelFromDir reads, and the text backbone as a Llama folder.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OPENAI_CLIP_MEAN, OPENAI_CLIP_STD } from '../io/image';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors';
import { LlavaModel } from '../models/llava/model';
import { CausalLM } from '../models/causal-lm';
import { memorySource } from '../models/weights';
import type { LmSize, VitSize } from './nets';
import type { HostTensor } from './params';

export interface ExportSpec {
  lm: LmSize;
  vit: VitSize;
  featureLayer: number;
  imageTokenId: number;
  bosId: number;
  eosId: number;
  padId: number;
}

type Hf = Map<string, { shape: number[]; data: Float32Array }>;

/** Columns [c0, c0+n) of a row-major [r, c] matrix, transposed: [n, r] (our [in,out] -> HF [out,in]). */
function colsT(t: HostTensor, c0: number, n: number): { shape: number[]; data: Float32Array } {
  const [r, c] = t.shape;
  const out = new Float32Array(n * r);
  for (let i = 0; i < r; i++) for (let j = 0; j < n; j++) out[j * r + i] = t.data[i * c + c0 + j];
  return { shape: [n, r], data: out };
}

const T = (t: HostTensor) => colsT(t, 0, t.shape[1]);
const same = (t: HostTensor) => ({ shape: [...t.shape], data: t.data });

export function lmTensors(p: Map<string, HostTensor>, s: LmSize, prefix: string, head: string): Hf {
  const g = (n: string) => {
    const t = p.get(n);
    if (!t) throw new Error(`export: parameter ${n} is missing`);
    return t;
  };
  const out: Hf = new Map();
  out.set(`${prefix}embed_tokens.weight`, same(g('lm.embed')));
  for (let i = 0; i < s.layers; i++) {
    const a = `${prefix}layers.${i}.`;
    out.set(`${a}input_layernorm.weight`, same(g(`lm.l${i}.in_norm`)));
    out.set(`${a}self_attn.q_proj.weight`, T(g(`lm.l${i}.q`)));
    out.set(`${a}self_attn.k_proj.weight`, T(g(`lm.l${i}.k`)));
    out.set(`${a}self_attn.v_proj.weight`, T(g(`lm.l${i}.v`)));
    out.set(`${a}self_attn.o_proj.weight`, T(g(`lm.l${i}.o`)));
    out.set(`${a}post_attention_layernorm.weight`, same(g(`lm.l${i}.post_norm`)));
    out.set(`${a}mlp.gate_proj.weight`, T(g(`lm.l${i}.gate`)));
    out.set(`${a}mlp.up_proj.weight`, T(g(`lm.l${i}.up`)));
    out.set(`${a}mlp.down_proj.weight`, T(g(`lm.l${i}.down`)));
  }
  out.set(`${prefix}norm.weight`, same(g('lm.norm')));
  out.set(head, T(g('lm.head')));
  return out;
}

export function llavaTensors(p: Map<string, HostTensor>, spec: ExportSpec): Hf {
  const out = lmTensors(p, spec.lm, 'language_model.model.', 'language_model.lm_head.weight');
  const g = (n: string) => {
    const t = p.get(n);
    if (!t) throw new Error(`export: parameter ${n} is missing`);
    return t;
  };
  const v = 'vision_tower.vision_model.';
  const s = spec.vit;
  const patch = T(g('vis.patch'));
  out.set(`${v}embeddings.patch_embedding.weight`, { shape: [s.d, 3, s.patch, s.patch], data: patch.data });
  out.set(`${v}embeddings.class_embedding`, same(g('vis.cls')));
  out.set(`${v}embeddings.position_embedding.weight`, same(g('vis.pos')));
  out.set(`${v}pre_layrnorm.weight`, same(g('vis.pre_w')));
  out.set(`${v}pre_layrnorm.bias`, same(g('vis.pre_b')));
  for (let i = 0; i < s.layers; i++) {
    const l = `${v}encoder.layers.${i}.`;
    const q = `vis.l${i}.`;
    const qkv = g(`${q}qkv`);
    const qb = g(`${q}qkv_b`).data;
    ['q_proj', 'k_proj', 'v_proj'].forEach((n, k) => {
      out.set(`${l}self_attn.${n}.weight`, colsT(qkv, k * s.d, s.d));
      out.set(`${l}self_attn.${n}.bias`, { shape: [s.d], data: qb.slice(k * s.d, (k + 1) * s.d) });
    });
    out.set(`${l}self_attn.out_proj.weight`, T(g(`${q}o`)));
    out.set(`${l}self_attn.out_proj.bias`, same(g(`${q}ob`)));
    out.set(`${l}layer_norm1.weight`, same(g(`${q}ln1w`)));
    out.set(`${l}layer_norm1.bias`, same(g(`${q}ln1b`)));
    out.set(`${l}layer_norm2.weight`, same(g(`${q}ln2w`)));
    out.set(`${l}layer_norm2.bias`, same(g(`${q}ln2b`)));
    out.set(`${l}mlp.fc1.weight`, T(g(`${q}fc1`)));
    out.set(`${l}mlp.fc1.bias`, same(g(`${q}fc1b`)));
    out.set(`${l}mlp.fc2.weight`, T(g(`${q}fc2`)));
    out.set(`${l}mlp.fc2.bias`, same(g(`${q}fc2b`)));
  }
  // HF's CLIPVisionModel has a post-LayerNorm that LLaVA never uses; identity keeps the folder HF-complete.
  out.set(`${v}post_layernorm.weight`, { shape: [s.d], data: new Float32Array(s.d).fill(1) });
  out.set(`${v}post_layernorm.bias`, { shape: [s.d], data: new Float32Array(s.d) });
  out.set('multi_modal_projector.linear_1.weight', T(g('proj.w1')));
  out.set('multi_modal_projector.linear_1.bias', same(g('proj.b1')));
  out.set('multi_modal_projector.linear_2.weight', T(g('proj.w2')));
  out.set('multi_modal_projector.linear_2.bias', same(g('proj.b2')));
  return out;
}

export function textConfig(spec: ExportSpec): Record<string, unknown> {
  const s = spec.lm;
  return {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    vocab_size: s.vocab,
    hidden_size: s.d,
    intermediate_size: s.inter,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.heads,
    head_dim: s.d / s.heads,
    hidden_act: 'silu',
    rms_norm_eps: s.eps,
    rope_theta: s.ropeTheta,
    max_position_embeddings: 256,
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: false,
    bos_token_id: spec.bosId,
    eos_token_id: spec.eosId,
    pad_token_id: spec.padId,
    torch_dtype: 'float32',
  };
}

export function llavaConfig(spec: ExportSpec): Record<string, unknown> {
  const v = spec.vit;
  const { architectures: _a, ...text } = textConfig(spec);
  return {
    architectures: ['LlavaForConditionalGeneration'],
    model_type: 'llava',
    image_token_index: spec.imageTokenId,
    image_seq_length: (v.image / v.patch) ** 2,
    projector_hidden_act: 'gelu',
    vision_feature_layer: spec.featureLayer,
    vision_feature_select_strategy: 'default',
    ignore_index: -100,
    tie_word_embeddings: false,
    torch_dtype: 'float32',
    text_config: text,
    vision_config: {
      model_type: 'clip_vision_model',
      hidden_size: v.d,
      intermediate_size: v.inter,
      num_hidden_layers: v.layers,
      num_attention_heads: v.heads,
      image_size: v.image,
      patch_size: v.patch,
      num_channels: 3,
      layer_norm_eps: v.eps,
      hidden_act: 'quick_gelu',
      projection_dim: v.d,
    },
  };
}

export function preprocessorConfig(size: number): Record<string, unknown> {
  return {
    image_processor_type: 'CLIPImageProcessor',
    processor_class: 'LlavaProcessor',
    do_resize: true,
    size: { shortest_edge: size },
    resample: 3,
    do_center_crop: true,
    crop_size: { height: size, width: size },
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: [...OPENAI_CLIP_MEAN],
    image_std: [...OPENAI_CLIP_STD],
    do_convert_rgb: true,
  };
}

function writeHf(dir: string, tensors: Hf, metadata: Record<string, string>): void {
  const rec: Record<string, TensorToWrite> = {};
  for (const [k, v] of tensors) rec[k] = { dtype: 'F32', shape: v.shape, data: v.data };
  writeSafetensors(path.join(dir, 'model.safetensors'), rec, { format: 'pt', ...metadata });
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

function copyTokenizer(tokenizerDir: string, dir: string): void {
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(tokenizerDir, f), path.join(dir, f));
}

function generationConfig(spec: ExportSpec): Record<string, unknown> {
  return { bos_token_id: spec.bosId, eos_token_id: spec.eosId, pad_token_id: spec.padId, do_sample: false, max_new_tokens: 20 };
}

/**
 * Writes the VLM folder; returns its tensors (HF names) for in-memory checks. `backboneDir`: a backbone folder
 * outside `dir` that config.json names (hopscope_backbone, relative), so VLMs can share one.
 */
export function saveLlavaFolder(dir: string, params: Map<string, HostTensor>, spec: ExportSpec, tokenizerDir: string, metadata: Record<string, string> = {}, backboneDir?: string): Hf {
  fs.mkdirSync(dir, { recursive: true });
  const tensors = llavaTensors(params, spec);
  writeHf(dir, tensors, metadata);
  const named = backboneDir ? { hopscope_backbone: path.relative(dir, backboneDir).split(path.sep).join('/') } : {};
  fs.writeFileSync(path.join(dir, 'config.json'), json({ ...llavaConfig(spec), ...named }));
  fs.writeFileSync(path.join(dir, 'generation_config.json'), json(generationConfig(spec)));
  fs.writeFileSync(path.join(dir, 'preprocessor_config.json'), json(preprocessorConfig(spec.vit.image)));
  copyTokenizer(tokenizerDir, dir);
  return tensors;
}

/** Writes the text-only backbone (the LLM after stage a) as a Llama folder. */
export function saveBackboneFolder(dir: string, params: Map<string, HostTensor>, spec: ExportSpec, tokenizerDir: string, metadata: Record<string, string> = {}): Hf {
  fs.mkdirSync(dir, { recursive: true });
  const tensors = lmTensors(params, spec.lm, 'model.', 'lm_head.weight');
  writeHf(dir, tensors, metadata);
  fs.writeFileSync(path.join(dir, 'config.json'), json(textConfig(spec)));
  fs.writeFileSync(path.join(dir, 'generation_config.json'), json(generationConfig(spec)));
  copyTokenizer(tokenizerDir, dir);
  return tensors;
}

/** The inference model (src/models) built from in-memory weights, as loadModelFromDir would build it. */
export function inMemoryLlava(params: Map<string, HostTensor>, spec: ExportSpec): LlavaModel {
  return LlavaModel.load(memorySource('trained (in memory)', llavaTensors(params, spec)), llavaConfig(spec));
}

export function inMemoryBackbone(params: Map<string, HostTensor>, spec: ExportSpec): CausalLM {
  return CausalLM.load(memorySource('backbone (in memory)', lmTensors(params, spec.lm, 'model.', 'lm_head.weight')), textConfig(spec));
}
