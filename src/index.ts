// hopscope: the library's public entry (the kernel preloads it as `hs`). The everyday calls are
// top-level (loadModel, loadDataset, runExperiment, intervene, ...); every layer is also available
// whole as a namespace: engine, io, models, interventions, experiments, data.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from './errors';
import { loadModelWithAssets } from './experiments/assets';
import { isRawPrompts, readRawPrompts, type RawPrompts } from './experiments/sources/raw';
import { loadPopVQA, type Dataset, type LoadOptions as DatasetLoadOptions } from './data/popvqa';
import { isTeachingModel, TEACHING_MODELS } from './data/teaching-models';
import type { LoadOptions } from './models/load';
import type { Model } from './models/model';
import { runExperiment as runLocal, type ResultOf, type RunContext as ExperimentRunContext, type SpecInput } from './experiments';

// Layers as namespaces (hs.interventions.compileInterventions, hs.experiments.sweep, ...).
export * as interventions from './interventions';
export * as experiments from './experiments';

// Engine, io, models and data, flat.
export * from './engine/backend';
export * from './io/checkpoint';
export * from './io/safetensors';
export * from './io/tokenizer';
export * from './io/prompt';
export * from './io/image';
export * from './io/processors';
export * from './models/model';
export * from './models/hooks';
export * from './models/load';
export * from './models/weights';
export * from './models/decoder';
export * from './models/decoder-weights';
export * from './models/llava/model';
export * from './models/causal-lm';
export * from './models/llava-next/model';
export * from './models/qwen2-vl/model';
export * from './models/qwen2-vl/config';
export * from './models/qwen2-vl/rope-index';
export { Qwen2VisionTower } from './models/qwen2-vl/vision';
export * from './models/pixtral/model';
export { PixtralVisionModel, pixtralRopeTables } from './models/pixtral/vision';
export { parsePixtralConfig, parsePixtralVisionConfig, isPixtralConfig, type PixtralConfig, type PixtralVisionConfig } from './models/pixtral/config';
export * from './models/streaming';
export * from './models/memory-plan';
export * from './data/popvqa';
export * from './data/answer-match';
export * from './data/stats';
export * from './data/toyworld';

export { HopscopeError, CheckpointError, ConfigError, InputError, SpecError } from './errors';
export {
  compileInterventions,
  intervene,
  plainRows,
  resolveSelector,
  spansFromIds,
  NoOpError,
  type Selector,
  type InterventionSpec,
  type RowGeometry,
} from './interventions';
export {
  validateSpec,
  viewFromResult,
  compareResults,
  partialResult,
  viewKindOf,
  EXPERIMENT_KINDS,
  defineExperiment,
  registerExperiment,
  experimentDefinitions,
  type ExperimentDefinition,
  sweep,
  cleanState,
  cleanStates,
  attributionPatching,
  rawSource,
  datasetSource,
  toPromptSource,
  scopeQuestions,
  type QuestionSelection,
  type ExperimentSpec,
  type ExperimentResult,
  type ExperimentContext,
  type PromptSource,
} from './experiments';

/**
 * Validates and runs an experiment spec (experiments/index.ts). With `queue: "redis://HOST:PORT/DB"` its patch
 * sweeps run on that queue's workers (docs/cluster.md); the queue code loads only then. A built-in kind's result
 * is typed by kind: `summary` is that kind's `...Summary` (experiments/registry.ts `ExperimentTypes`).
 */
export async function runExperiment<K extends string>(spec: SpecInput<K>, ctx: RunContext): Promise<ResultOf<K>> {
  if (ctx?.queue) {
    const { runQueued } = require('./queue') as typeof import('./queue');
    return (await runQueued(spec, { ...ctx, queue: ctx.queue })) as unknown as ResultOf<K>;
  }
  return runLocal(spec, ctx);
}

/** `runExperiment`'s context: the model, its data, and optionally a queue for the patch sweeps. */
export type RunContext = ExperimentRunContext & { queue?: string };

export { TEACHING_DIR, TEACHING_MODELS, teachingModelDir } from './data/teaching-models';

/** A HuggingFace model folder (with its tokenizer and preprocessor when present), or a teaching model's name. */
export async function loadModel(dirOrName: string, opts: LoadOptions = {}): Promise<Model> {
  if (isTeachingModel(dirOrName)) {
    const named = TEACHING_MODELS[dirOrName];
    if (!fs.existsSync(path.join(named, 'config.json')))
      throw new InputError(`the teaching model "${dirOrName}" is not built (${named}); data/teaching/README.md says how to train it`);
    return loadModelWithAssets(named, opts);
  }
  return loadModelWithAssets(path.resolve(dirOrName), opts);
}

/** A data folder: PopVQA format (entities.csv + questions.csv + images) or pre-tokenised prompts (prompts.json). */
export async function loadDataset(dir: string, opts: DatasetLoadOptions = {}): Promise<Dataset | RawPrompts> {
  const root = path.resolve(dir);
  if (fs.existsSync(path.join(root, 'prompts.json'))) return readRawPrompts(path.join(root, 'prompts.json'));
  if (fs.existsSync(path.join(root, 'entities.csv'))) return loadPopVQA(root, opts);
  throw new InputError(`${root}: not a data folder (expected entities.csv + questions.csv, or prompts.json)`);
}

export { isRawPrompts };
// Both the model loader and the dataset loader have LoadOptions: the model's keeps the name.
export type { LoadOptions } from './models/load';
export type { DatasetLoadOptions };
