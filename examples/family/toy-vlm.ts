// A worked example of a model family (docs/adding-a-family.md), and the toy family the loader's tests register:
// one object saying everything the library needs, registered under its HF model_type with one call. The toy
// reuses LLaVA's model class (a real family has its own file under src/models/ with its config, parts and model).
import { LlavaModel } from '../../src/models/llava/model';
import type { Family } from '../../src/models/load';
import { DEFAULT_STREAM_RULES } from '../../src/models/memory-plan';

export const toyVlm: Family = {
  // Reads config.json and the weights (checked both ways against the config) into a hookable model.
  load: (src, config) => LlavaModel.load(src, config),
  // Decoder layers stream one at a time when the model exceeds the memory budget.
  stream: DEFAULT_STREAM_RULES,
  // Where the language model's config sits inside config.json (memory planning reads it before loading).
  textConfig: (config) => (config.text_config ?? {}) as Record<string, unknown>,
  // Its checkpoints name tensors like LLaVA's (newer transformers layouts are mapped back).
  nameLayout: 'llava',
  // Its image features enter the residual stream as token embeddings.
  imageInput: 'residual',
};
