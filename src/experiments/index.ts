// The papers' experiments as a library: each kind is a pure async function
// (model, data, spec, ctx) → {kind, spec, table, summary}; `runExperiment` validates a JSON spec against
// schemas/<kind>.json (defaults filled, errors naming the field) and dispatches by kind.
import { InputError } from '../errors';
import type { Model } from '../models/model';
import type { ExperimentContext, ExperimentResult } from './context';
import { experimentDefinition, type ExperimentKind, type ExperimentTypes } from './registry';
import { toPromptSource } from './to-source';
import type { SpecBase } from './spec';
import { validateSpec } from './validate';

/** A built-in kind's validated spec (the union of them: `ExperimentSpec`). */
export type SpecOf<K extends ExperimentKind> = ExperimentTypes[K]['spec'];
export type ExperimentSpec = SpecOf<ExperimentKind>;
/**
 * A spec as a caller writes it: its kind and any of its fields (the rest take the schema's defaults), checked
 * against the kind's spec type when the kind is a built-in one. A spec held as `unknown` is cast
 * (`spec as SpecBase`): the schema validates it at run time either way.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- `any` values: the one index signature an interface (SpecBase) is assignable to
export type SpecInput<K extends string> = { kind: K } & (K extends ExperimentKind ? Partial<SpecOf<K>> : { [field: string]: any });
/**
 * What `runExperiment` resolves to: for a built-in kind, its validated spec, table and typed summary; for a
 * registered kind, or a kind the type checker cannot see (a string, `any`), the untyped result.
 */
export type ResultOf<K extends string> = [ExperimentKind] extends [K]
  ? ExperimentResult<SpecBase>
  : K extends ExperimentKind
    ? ExperimentResult<SpecOf<K>, ExperimentTypes[K]['summary']>
    : ExperimentResult<SpecBase>;

export interface RunContext extends ExperimentContext {
  model: Model;
  /** A PopVQA-format folder or Dataset, raw pre-tokenised prompts, or a PromptSource. */
  data?: unknown;
}

/**
 * Validates `spec` (defaults filled in) and runs its kind's definition. The result's `spec` is the validated one;
 * a built-in kind's result is typed by kind (`ResultOf<K>`). One signature on purpose: with a second, untyped
 * overload TypeScript's first (subtype) pass would pick it for any spec holding an `any` field.
 */
export async function runExperiment<K extends string>(spec: SpecInput<K>, ctx: RunContext): Promise<ResultOf<K>> {
  const valid = validateSpec<SpecBase>(spec);
  if (!ctx || !ctx.model) throw new InputError('runExperiment needs ctx.model (a loaded model: loadModel(dir))');
  ctx.signal?.throwIfAborted();
  const source = toPromptSource(ctx.model, ctx.data, { template: valid.template });
  return (await experimentDefinition(valid.kind).run(ctx.model, source, valid, ctx)) as ResultOf<K>;
}

export { layersOf, type ExperimentKind, type SpecBase } from './spec';
export type { ExperimentTypes } from './registry';
export { EXPERIMENT_KINDS, validateSpec, SCHEMA_DIR } from './validate';
export type { ExperimentContext, ExperimentResult, ProgressEvent, Summary } from './context';
export { recallGap, gapSummary, answerQuestions, type RecallGapSpec, type RecallGapSummary } from './recall-gap';
export { crossPatch, donorsFor, type CrossPatchSpec, type CrossPatchSummary } from './cross-patch';
export { pairSwitchLayer, switchLayer } from './switch-layer';
export { freezeExperiment, freezeBounds, type FreezeExperimentSpec, type FreezeSummary } from './freeze';
export { knockoutExperiment, edgeSet, layerSets, type KnockoutExperimentSpec, type KnockoutSummary } from './knockout';
export { logitLens, logitLensBatch, lensSelector, type LogitLensSpec, type LogitLensSummary } from './logit-lens';
export { probeExperiment, probeSelector, splitExamples, type ProbeSpec, type ProbeSummary } from './probe';
export { fitLogReg, accuracy, type LogReg, type LogRegOptions } from './logreg';
export { attributionExperiment, metricFor, exactPatchJobs, type AttributionSpec, type AttributionSummary } from './attribution';
export { attributionPatching, attributionPoints, logitDiff, answerLogit, answerProb, type Metric, type AttributionResult } from './attribution-patching';
export { recovery, DEFAULT_COT_SUFFIX, type RecoverySpec, type RecoverySummary } from './recovery';
export { circuitExperiment, compareSites, siteScores, type CircuitSpec, type CircuitSummary } from './circuit';
export { circuitMeans, CIRCUIT_RUNS, siteCount, type CircuitRun, type SiteScore } from './circuit-sites';
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
export { viewFromResult, compareResults, partialResult, type ExperimentView } from './view-of';
export { BUILTIN_EXPERIMENTS, defineExperiment, registerExperiment, unregisterExperiment, experimentDefinitions, experimentDefinition, experimentKinds, experimentOptions, viewKindOf, type ExperimentDefinition } from './registry';
export { specOptions, parseOption, optionExpects, type SpecOption, type OptionType } from './spec-options';
export type { ViewBuilder, ViewInput } from './views';
export { writeTable, arrowSafe } from './table-io';
