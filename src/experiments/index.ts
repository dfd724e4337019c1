// The papers' experiments as a library: each kind is a pure async function
// (model, data, spec, ctx) → {kind, spec, table, summary}; `runExperiment` validates a JSON spec against
// schemas/<kind>.json (defaults filled, errors naming the field) and dispatches by kind.
import { InputError } from '../errors';
import type { Model } from '../models/model';
import type { AttributionSpec } from './attribution';
import type { CircuitSpec } from './circuit';
import type { ExperimentContext, ExperimentResult } from './context';
import type { CrossPatchSpec } from './cross-patch';
import type { FreezeExperimentSpec } from './freeze';
import type { KnockoutExperimentSpec } from './knockout';
import type { LogitLensSpec } from './logit-lens';
import type { ProbeSpec } from './probe';
import type { RecallGapSpec } from './recall-gap';
import type { RecoverySpec } from './recovery';
import { experimentDefinition } from './registry';
import { toPromptSource } from './to-source';
import type { SpecBase } from './spec';
import { validateSpec } from './validate';

export type ExperimentSpec =
  | RecallGapSpec
  | CrossPatchSpec
  | FreezeExperimentSpec
  | KnockoutExperimentSpec
  | LogitLensSpec
  | ProbeSpec
  | AttributionSpec
  | RecoverySpec
  | CircuitSpec;

export interface RunContext extends ExperimentContext {
  model: Model;
  /** A PopVQA-format folder or Dataset, raw pre-tokenised prompts, or a PromptSource. */
  data?: unknown;
}

/** Validates `spec` (defaults filled in) and runs its kind's definition. The result's `spec` is the validated one. */
export async function runExperiment(spec: unknown, ctx: RunContext): Promise<ExperimentResult<ExperimentSpec>> {
  const valid = validateSpec<SpecBase>(spec) as ExperimentSpec;
  if (!ctx || !ctx.model) throw new InputError('runExperiment needs ctx.model (a loaded model: loadModel(dir))');
  ctx.signal?.throwIfAborted();
  const source = toPromptSource(ctx.model, ctx.data, { template: valid.template });
  // The definition returns its own spec type; the union names the built-in ones (a registered kind passes through).
  return (await experimentDefinition(valid.kind).run(ctx.model, source, valid, ctx)) as ExperimentResult<ExperimentSpec>;
}

export { layersOf, type ExperimentKind, type SpecBase } from './spec';
export { EXPERIMENT_KINDS, validateSpec, SCHEMA_DIR } from './validate';
export type { ExperimentContext, ExperimentResult, ProgressEvent } from './context';
export { recallGap, gapSummary, answerQuestions, type RecallGapSpec } from './recall-gap';
export { crossPatch, donorsFor, pairSwitchLayer, type CrossPatchSpec } from './cross-patch';
export { freezeExperiment, freezeBounds, type FreezeExperimentSpec } from './freeze';
export { knockoutExperiment, edgeSet, layerSets, type KnockoutExperimentSpec } from './knockout';
export { logitLens, logitLensBatch, lensSelector, type LogitLensSpec } from './logit-lens';
export { probeExperiment, probeSelector, splitExamples, type ProbeSpec } from './probe';
export { fitLogReg, accuracy, type LogReg, type LogRegOptions } from './logreg';
export { attributionExperiment, metricFor, exactPatchJobs, type AttributionSpec } from './attribution';
export { attributionPatching, attributionPoints, logitDiff, answerLogit, answerProb, type Metric, type AttributionResult } from './attribution-patching';
export { recovery, DEFAULT_COT_SUFFIX, type RecoverySpec } from './recovery';
export { circuitExperiment, circuitMeans, compareSites, siteScores, CIRCUIT_RUNS, type CircuitSpec, type CircuitRun, type SiteScore } from './circuit';
export { backboneDirOf } from './backbone';
export { cleanState, cleanStates, runJobs, sweep, residHooks, type CleanState, type CleanSet, type PatchJob, type JobOutput, type SweepOptions, type SweepExecutor } from './scheduler';
export { RunCheckpoint, type Row } from './checkpoint';
export { makeBatch, rowInputs, batchesOf, stackPixels, imageInputsFor, type Batch } from './batch';
export { generateAll, type Generation } from './greedy';
export { toPromptSource } from './to-source';
export { filterEntities, scopeQuestions, type PromptSource, type PromptCase, type EntityRef, type Modality, type QuestionSelection } from './source';
export { rawSource, readRawPrompts, isRawPrompts, rawWord, type RawPrompts, type RawPrompt } from './sources/raw';
export { datasetSource, prepareSource } from './sources/dataset';
export { loadModelWithAssets, setModelAssets, modelAssets, defaultTemplate, type ModelAssets, type PixelInput, type ImagePrep } from './assets';
export { viewFromResult, partialResult, type ExperimentView } from './view-of';
export { BUILTIN_EXPERIMENTS, defineExperiment, registerExperiment, unregisterExperiment, experimentDefinitions, experimentDefinition, experimentKinds, experimentOptions, viewKindOf, type ExperimentDefinition } from './registry';
export { specOptions, parseOption, optionExpects, type SpecOption, type OptionType } from './spec-options';
export type { ViewBuilder, ViewInput } from './views';
export { writeTable, arrowSafe } from './table-io';
