// Loads a model from a HuggingFace folder: picks the family from config.json's model_type and reads
// weights through the checkpoint layer (safetensors only; pickles are refused there).
import * as tf from '@tensorflow/tfjs-core';
import { engineInfo } from '../engine/backend';
import { ConfigError } from '../errors';
import { openCheckpoint, type Checkpoint } from '../io/checkpoint';
import { CausalLM } from './causal-lm';
import { parseDecoderConfig } from './config';
import { LlavaModel } from './llava';
import { LlavaNextModel } from './llava-next';
import type { Model } from './model';
import { isPixtralConfig } from './pixtral/config';
import { PixtralModel } from './pixtral/model';
import { MllamaModel } from './mllama/model';
import { Qwen2VLModel, QWEN2_VL_STREAM_RULES, qwen2VLTextConfig } from './qwen2-vl';
import { DEFAULT_STREAM_RULES, planMemory, resolveBudget, type MemoryPlan, type StreamableSource, type StreamRules } from './streaming';
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

interface Family {
  load: Loader;
  /** Which tensors stream and how they group into units (defaults: decoder layers, embedding, head). */
  stream: StreamRules;
  /** The decoder's config inside config.json (for the activation estimate). */
  textConfig: (cfg: Record<string, unknown>) => Record<string, unknown>;
}

const topLevel = (cfg: Record<string, unknown>) => cfg;
const nested = (cfg: Record<string, unknown>) => (cfg.text_config ?? {}) as Record<string, unknown>;

/** Families by HF model_type. Each family's file registers its own loader here. */
const LOADERS: Record<string, Family> = {
  // One HF model_type, two towers: vision_config.model_type "pixtral" makes a `llava` folder the Pixtral family.
  llava: { load: (src, cfg) => (isPixtralConfig(cfg) ? PixtralModel.load(src, cfg) : LlavaModel.load(src, cfg)), stream: DEFAULT_STREAM_RULES, textConfig: nested },
  llava_next: { load: (src, cfg) => LlavaNextModel.load(src, cfg), stream: DEFAULT_STREAM_RULES, textConfig: nested },
  qwen2_vl: { load: (src, cfg) => Qwen2VLModel.load(src, cfg), stream: QWEN2_VL_STREAM_RULES, textConfig: qwen2VLTextConfig },
  mllama: { load: (src, cfg) => MllamaModel.load(src, cfg), stream: DEFAULT_STREAM_RULES, textConfig: nested },
  llama: { load: (src, cfg) => CausalLM.load(src, cfg), stream: DEFAULT_STREAM_RULES, textConfig: topLevel },
  mistral: { load: (src, cfg) => CausalLM.load(src, cfg), stream: DEFAULT_STREAM_RULES, textConfig: topLevel },
  qwen2: { load: (src, cfg) => CausalLM.load(src, cfg), stream: DEFAULT_STREAM_RULES, textConfig: topLevel },
};

export function registerFamily(
  modelType: string,
  loader: Loader,
  opts: { stream?: StreamRules; textConfig?: (cfg: Record<string, unknown>) => Record<string, unknown> } = {},
): void {
  LOADERS[modelType] = { load: loader, stream: opts.stream ?? DEFAULT_STREAM_RULES, textConfig: opts.textConfig ?? nested };
}

export function supportedModelTypes(): string[] {
  return Object.keys(LOADERS).sort();
}

export function checkpointSource(ckpt: Checkpoint, memory?: MemoryPlan): WeightSource {
  const src: StreamableSource = {
    origin: ckpt.dir,
    shape: (n) => (ckpt.has(n) ? ckpt.entry(n).shape : undefined),
    f32: (n, transpose) => ckpt.readF32(n, { transpose2d: transpose }),
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
  const ckpt = openCheckpoint(dir, { file: opts.file });
  try {
    const type = String(ckpt.config.model_type ?? '');
    const family = LOADERS[type];
    if (!family)
      throw new ConfigError(`${dir}: model_type "${type}" is not supported (supported: ${supportedModelTypes().join(', ')})`);
    const memory = planCheckpointMemory(ckpt, family, opts);
    return family.load(checkpointSource(ckpt, memory), ckpt.config, dir);
  } finally {
    ckpt.close();
  }
}
