// Loads a model from a HuggingFace folder: picks the family from config.json's model_type and reads
// weights through the checkpoint layer (safetensors only; pickles are refused there).
import { ConfigError } from '../errors';
import { openCheckpoint, type Checkpoint } from '../io/checkpoint';
import { CausalLM } from './causal-lm';
import { LlavaModel } from './llava';
import type { Model } from './model';
import type { WeightSource } from './weights';

export interface LoadOptions {
  /** Another safetensors file in the folder (e.g. `model-bf16.safetensors`). */
  file?: string;
}

type Loader = (src: WeightSource, config: Record<string, unknown>, dir: string) => Model;

/** Families by HF model_type. Each family's file registers its own loader here. */
const LOADERS: Record<string, Loader> = {
  llava: (src, cfg) => LlavaModel.load(src, cfg),
  llama: (src, cfg) => CausalLM.load(src, cfg),
  mistral: (src, cfg) => CausalLM.load(src, cfg),
  qwen2: (src, cfg) => CausalLM.load(src, cfg),
};

export function registerFamily(modelType: string, loader: Loader): void {
  LOADERS[modelType] = loader;
}

export function supportedModelTypes(): string[] {
  return Object.keys(LOADERS).sort();
}

export function checkpointSource(ckpt: Checkpoint): WeightSource {
  return {
    origin: ckpt.dir,
    shape: (n) => (ckpt.has(n) ? ckpt.entry(n).shape : undefined),
    f32: (n, transpose) => ckpt.readF32(n, { transpose2d: transpose }),
    names: () => ckpt.names(),
  };
}

/** Reads a HF model folder into a hookable model (weights resident in the backend). */
export function loadModelFromDir(dir: string, opts: LoadOptions = {}): Model {
  const ckpt = openCheckpoint(dir, { file: opts.file });
  try {
    const type = String(ckpt.config.model_type ?? '');
    const loader = LOADERS[type];
    if (!loader)
      throw new ConfigError(`${dir}: model_type "${type}" is not supported (supported: ${supportedModelTypes().join(', ')})`);
    return loader(checkpointSource(ckpt), ckpt.config, dir);
  } finally {
    ckpt.close();
  }
}
