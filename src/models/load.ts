// Loads a model from a HuggingFace folder: picks the family from config.json's model_type and reads
// weights through the checkpoint layer (safetensors only; pickles are refused there).
import * as tf from '@tensorflow/tfjs-core';
import { engineInfo } from '../engine/backend';
import { ConfigError } from '../errors';
import { openCheckpoint, type Checkpoint, type NameLayout } from '../io/checkpoint';
import { CausalLM } from './causal-lm';
import { parseDecoderConfig } from './config';
import { LlavaModel } from './llava/model';
import { LlavaNextModel } from './llava-next/model';
import type { ImageInput, Model } from './model';
import { isPixtralConfig } from './pixtral/config';
import { PixtralModel } from './pixtral/model';
import { MllamaModel } from './mllama/model';
import { Qwen2VLModel } from './qwen2-vl/model';
import { QWEN2_VL_STREAM_RULES, qwen2VLTextConfig } from './qwen2-vl/config';
import { DEFAULT_STREAM_RULES, planMemory, resolveBudget, type MemoryPlan, type StreamRules } from './memory-plan';
import type { StreamableSource } from './streaming';
import type { WeightSource } from './weights';

export interface LoadOptions {
  /** Another safetensors file in the folder (e.g. `model-bf16.safetensors`). */
  file?: string;
  /**
   * Device memory the model may use, in bytes or with a unit ("3GB", "100kB"); defaults to
   * HOPSCOPE_MEMORY_BUDGET, else 3.5 GiB on wasm and half the host RAM elsewhere.
   */
  memoryBudget?: number | string;
  /** 'auto' (default) streams weights layer by layer only when the resident model exceeds the budget. */
  streaming?: 'auto' | 'always' | 'never';
  /** Prompt length the load-time memory check plans for (default 1024; longer prompts are checked when they run). */
  plannedTokens?: number;
}

type Loader = (src: WeightSource, config: Record<string, unknown>, dir: string) => Model;

/**
 * Everything the library needs to know about a model family, in one object (docs/adding-a-family.md). Its
 * entry in FAMILIES, keyed by HF model_type, is the only registration: checkpoint name mapping, memory
 * planning and loading all read it.
 */
export interface Family {
  load: Loader;
  /** Which tensors stream and how they group into units (defaults: decoder layers, embedding, head). */
  stream: StreamRules;
  /** The decoder's config inside config.json (for the activation estimate). */
  textConfig: (cfg: Record<string, unknown>) => Record<string, unknown>;
  /** How its checkpoints name tensors (newer transformers layouts are mapped back; default: as stored). */
  nameLayout?: NameLayout;
  /** How images reach its language model (informational here; the model reports it as Model.imageInput). */
  imageInput?: ImageInput;
}

const topLevel = (cfg: Record<string, unknown>) => cfg;
const nested = (cfg: Record<string, unknown>) => (cfg.text_config ?? {}) as Record<string, unknown>;

const llama: Family = { load: (src, cfg) => CausalLM.load(src, cfg), stream: DEFAULT_STREAM_RULES, textConfig: topLevel, nameLayout: 'text', imageInput: 'none' };

/** The families, by HF model_type: the one list every consumer reads. */
const LOADERS: Record<string, Family> = {
  // One HF model_type, two towers: vision_config.model_type "pixtral" makes a `llava` folder the Pixtral family.
  llava: {
    load: (src, cfg) => (isPixtralConfig(cfg) ? PixtralModel.load(src, cfg) : LlavaModel.load(src, cfg)),
    stream: DEFAULT_STREAM_RULES,
    textConfig: nested,
    nameLayout: 'llava',
    imageInput: 'residual',
  },
  llava_next: { load: (src, cfg) => LlavaNextModel.load(src, cfg), stream: DEFAULT_STREAM_RULES, textConfig: nested, nameLayout: 'llava', imageInput: 'residual' },
  qwen2_vl: { load: (src, cfg) => Qwen2VLModel.load(src, cfg), stream: QWEN2_VL_STREAM_RULES, textConfig: qwen2VLTextConfig, nameLayout: 'qwen2_vl', imageInput: 'residual' },
  mllama: { load: (src, cfg) => MllamaModel.load(src, cfg), stream: DEFAULT_STREAM_RULES, textConfig: nested, nameLayout: 'mllama', imageInput: 'cross-attention' },
  llama,
  mistral: llama,
  qwen2: llama,
};

/**
 * Adds a family under a model_type (an extension, or a test's toy family). A model_type already taken is an
 * error: a registration never silently replaces a family.
 */
export function registerFamily(modelType: string, family: Family): void {
  if (LOADERS[modelType]) throw new ConfigError(`model_type "${modelType}" already has a family; registered: ${supportedModelTypes().join(', ')}`);
  LOADERS[modelType] = family;
}

/** Removes a family added with registerFamily (tests clean up their toy families). */
export function unregisterFamily(modelType: string): void {
  delete LOADERS[modelType];
}

export function familyOf(modelType: string): Family | undefined {
  return Object.prototype.hasOwnProperty.call(LOADERS, modelType) ? LOADERS[modelType] : undefined;
}

export function supportedModelTypes(): string[] {
  return Object.keys(LOADERS).sort();
}

/** The checkpoint name layout of a model_type, from its family. */
export function nameLayoutOf(modelType: string): NameLayout {
  return familyOf(modelType)?.nameLayout ?? 'other';
}

export function checkpointSource(ckpt: Checkpoint, memory?: MemoryPlan): WeightSource {
  const src: StreamableSource = {
    origin: ckpt.dir,
    shape: (n) => (ckpt.has(n) ? ckpt.entry(n).shape : undefined),
    f32: (n, transpose, into) => ckpt.readF32(n, { transpose2d: transpose, into }),
    names: () => ckpt.names(),
    compact: (n, transpose) => ckpt.readCompact(n, { transpose2d: transpose }),
    memory,
  };
  return src;
}

/** Resident or streamed, decided from the checkpoint's sizes before any weight is read (throws when neither fits). */
export function planCheckpointMemory(ckpt: Checkpoint, family: Family, opts: LoadOptions): MemoryPlan {
  const text = parseDecoderConfig(family.textConfig(ckpt.config as Record<string, unknown>), `${ckpt.dir}/config.json`);
  const backend = engineInfo()?.provider ?? tf.getBackend();
  const mode = opts.streaming === 'always' ? 'stream' : opts.streaming === 'never' ? 'resident' : 'auto';
  return planMemory(
    ckpt.names().map((n) => {
      const e = ckpt.entry(n);
      return { name: n, shape: e.shape, bytes: e.byteLength };
    }),
    {
      budgetBytes: resolveBudget(opts.memoryBudget, backend),
      dims: {
        vocab: text.vocabSize,
        hidden: text.hiddenSize,
        intermediate: text.intermediateSize,
        heads: text.numHeads,
        kvHeads: text.numKvHeads,
        headDim: text.headDim,
        layers: text.numLayers,
      },
      rules: family.stream,
      mode,
      plannedTokens: opts.plannedTokens,
      deviceIsHost: backend !== 'tensorflow-gpu',
      where: ckpt.dir,
    },
  );
}

/** Reads a HF model folder into a hookable model: weights resident, or streamed layer by layer when over the budget. */
export function loadModelFromDir(dir: string, opts: LoadOptions = {}): Model {
  const ckpt = openCheckpoint(dir, { file: opts.file, layout: nameLayoutOf });
  try {
    const type = String(ckpt.config.model_type ?? '');
    const family = familyOf(type);
    if (!family)
      throw new ConfigError(`${dir}: model_type "${type}" is not supported (supported: ${supportedModelTypes().join(', ')})`);
    const memory = planCheckpointMemory(ckpt, family, opts);
    return family.load(checkpointSource(ckpt, memory), ckpt.config, dir);
  } finally {
    ckpt.close();
  }
}
