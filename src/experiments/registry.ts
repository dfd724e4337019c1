// One definition per experiment kind, and the list of them. Everything else is derived from a definition: the
// spec's validation (its schema), `runExperiment`'s dispatch, the widget view (live and final), the kernel's
// magic and its flags (from the schema), the CLI's kinds, the demo's sections and their text (issue 13: a kind
// used to be written in eight places). Light on purpose: the kernel reads this list at start, so each `run`
// loads its experiment module on first use (the pattern src/experiments/source.ts uses for sources).
import * as path from 'node:path';
import { SpecError } from '../errors';
import type { ViewKind } from '../report/protocol';
import type { Model } from '../models/model';
import type { AttributionSpec, AttributionSummary } from './attribution';
import type { CircuitSpec, CircuitSummary } from './circuit';
import type { ExperimentContext, ExperimentResult, Summary } from './context';
import type { CrossPatchSpec, CrossPatchSummary } from './cross-patch';
import type { FreezeExperimentSpec, FreezeSummary } from './freeze';
import type { KnockoutExperimentSpec, KnockoutSummary } from './knockout';
import type { LogitLensSpec, LogitLensSummary } from './logit-lens';
import type { ProbeSpec, ProbeSummary } from './probe';
import type { RecallGapSpec, RecallGapSummary } from './recall-gap';
import type { RecoverySpec, RecoverySummary } from './recovery';
import type { PromptSource } from './source';
import type { SpecBase } from './spec';
import { readSchemaFile, specOptions, type SpecOption } from './spec-options';
import * as views from './views';
import type { ViewBuilder } from './views';

export const SCHEMA_DIR = path.resolve(__dirname, '..', '..', 'schemas');

export interface ExperimentDefinition<S extends SpecBase = SpecBase, M extends object = Summary> {
  kind: string;
  /** The JSON Schema of the spec: a name under schemas/ (default: the kind) or an absolute path. */
  schema?: string;
  /** One line: the magic's summary, `hopscope kinds`, docs. */
  summary: string;
  /** What the result shows, for the report section next to its figure. */
  explain: string;
  run(model: Model, source: PromptSource, spec: S, ctx: ExperimentContext): Promise<ExperimentResult<S, M>>;
  view: { kind: ViewKind; build: ViewBuilder<S> };
  /** The magic `%name`; `flags` renames a field's flag (default: kebab-case of the field). */
  magic: { name: string; flags?: Readonly<Record<string, string>> };
  /** Whether `hopscope demo` runs it (in list order). */
  demo: boolean;
}

/**
 * A definition as the registry holds it: its spec type widened to SpecBase. Sound because `run` and
 * `view.build` only ever receive specs that validated against the definition's own schema.
 */
export type AnyDefinition = ExperimentDefinition<SpecBase>;
const widen = <S extends SpecBase, M extends object>(def: ExperimentDefinition<S, M>): AnyDefinition => def as unknown as AnyDefinition;

/** Identity with the spec (and summary) types checked: `defineExperiment<MySpec, MySummary>({...})`. */
export function defineExperiment<S extends SpecBase, M extends object = Summary>(def: ExperimentDefinition<S, M>): ExperimentDefinition<S, M> {
  return def;
}

type Mod<T> = () => T;
const lazy = <T>(load: Mod<T>): Mod<T> => load;
const m = {
  recallGap: lazy(() => require('./recall-gap') as typeof import('./recall-gap')),
  crossPatch: lazy(() => require('./cross-patch') as typeof import('./cross-patch')),
  freeze: lazy(() => require('./freeze') as typeof import('./freeze')),
  knockout: lazy(() => require('./knockout') as typeof import('./knockout')),
  logitLens: lazy(() => require('./logit-lens') as typeof import('./logit-lens')),
  probe: lazy(() => require('./probe') as typeof import('./probe')),
  attribution: lazy(() => require('./attribution') as typeof import('./attribution')),
  recovery: lazy(() => require('./recovery') as typeof import('./recovery')),
  circuit: lazy(() => require('./circuit') as typeof import('./circuit')),
};

/** The papers' experiments, in the order the demo and `%lsmagic` show them. */
export const BUILTIN_EXPERIMENTS = [
  defineExperiment<RecallGapSpec, RecallGapSummary>({
    kind: 'recall-gap',
    summary: 'Factual accuracy with the entity in the image vs named in text, on identified entities (PopVQA)',
    explain:
      'Factual accuracy on identified entities when the entity is named in text vs shown as an image (PopVQA answer-match rule, per-entity then per-type means, paired Wilcoxon test). The papers find the image condition clearly worse.',
    run: (model, source, spec, ctx) => m.recallGap().recallGap(model, source, spec, ctx),
    view: { kind: 'recall-gap', build: views.recallGapView },
    magic: { name: 'recallgap' },
    demo: true,
  }),
  defineExperiment<CrossPatchSpec, CrossPatchSummary>({
    kind: 'cross-patch',
    summary: "Patch a donor entity's image-token states into a target at one layer; where does the prediction switch?",
    explain:
      "Donor image states written into a target image's tokens at one layer: before the switch layer the model names the donor, after it the target — the entity is resolved from image tokens by then.",
    run: (model, source, spec, ctx) => m.crossPatch().crossPatch(model, source, spec, ctx),
    view: { kind: 'layer-switch', build: views.crossPatchView },
    magic: { name: 'crosspatch' },
    demo: true,
  }),
  defineExperiment<FreezeExperimentSpec, FreezeSummary>({
    kind: 'freeze',
    summary: 'Freeze image tokens from a source layer up to --until; is the entity still identified?',
    explain: 'Image tokens frozen at their block-l value through layer T: entities still identified when frozen early were resolved early.',
    run: (model, source, spec, ctx) => m.freeze().freezeExperiment(model, source, spec, ctx),
    view: { kind: 'freeze-curve', build: views.freezeView },
    magic: { name: 'freeze' },
    demo: true,
  }),
  defineExperiment<KnockoutExperimentSpec, KnockoutSummary>({
    kind: 'knockout',
    summary: 'Attention knockout: block edges (e.g. image->last) in a window of layers; change in answer probability',
    explain: 'Attention edges blocked in windows of layers: where does the last token read the image, the entity, itself?',
    run: (model, source, spec, ctx) => m.knockout().knockoutExperiment(model, source, spec, ctx),
    view: { kind: 'knockout-map', build: views.knockoutView },
    magic: { name: 'knockout', flags: { fromLayer: '--from' } },
    demo: true,
  }),
  defineExperiment<LogitLensSpec, LogitLensSummary>({
    kind: 'logit-lens',
    summary: 'Decode every layer and position through the final norm and unembedding; top-k tokens',
    explain: 'Each layer and position decoded through the final norm and unembedding: when do image positions turn into entity-name tokens?',
    run: (model, source, spec, ctx) => m.logitLens().logitLens(model, source, spec, ctx),
    view: { kind: 'logit-lens', build: views.logitLensView },
    magic: { name: 'logitlens' },
    demo: true,
  }),
  defineExperiment<ProbeSpec, ProbeSummary>({
    kind: 'probe',
    summary: 'Linear probes per layer predicting entity identity from the residual; resolution layer',
    explain: 'Linear probes per layer predicting the entity from the residual: the resolution layer is where accuracy crosses the threshold, for image and text prompts.',
    run: (model, source, spec, ctx) => m.probe().probeExperiment(model, source, spec, ctx),
    view: { kind: 'probe-accuracy', build: views.probeView },
    magic: { name: 'probe' },
    demo: true,
  }),
  defineExperiment<AttributionSpec, AttributionSummary>({
    kind: 'attribution',
    summary: 'Attribution patching: linear estimate of every (layer, position) effect, exact patching of the top-k',
    explain: 'Attribution patching (gradient × difference) over layer × position in one backward pass, top cells confirmed by exact patching.',
    run: (model, source, spec, ctx) => m.attribution().attributionExperiment(model, source, spec, ctx),
    view: { kind: 'attribution-map', build: views.attributionView },
    magic: { name: 'attribute' },
    demo: true,
  }),
  defineExperiment<RecoverySpec, RecoverySummary>({
    kind: 'recovery',
    summary: "Patch the text-only backbone's entity state into the VLM at each layer; accuracy recovered",
    explain: "Backbone → VLM patching (the text LLM's entity state written into the VLM) and chain-of-thought prompting: how much of the gap comes back.",
    run: (model, source, spec, ctx) => m.recovery().recovery(model, source, spec, ctx),
    view: { kind: 'recovery-curve', build: views.recoveryView },
    magic: { name: 'recover' },
    demo: true,
  }),
  defineExperiment<CircuitSpec, CircuitSummary>({
    kind: 'circuit',
    summary: "Where recall sits: attn/MLP attribution by layer and position group in the backbone's text run vs the VLM's text and image runs",
    explain:
      "Circuit analysis (Too Late to Recall): attribution patching over every layer's attention and MLP outputs, summed over the entity's last token and span (the image in an image prompt), the query and the last position, for the backbone on the text question and the VLM on the text and the image question of the same pairs; top-k site overlap and per-layer rank correlation between the runs, top sites confirmed by exact patching (with topK at least every site, all of them: the comparison and the figure then use measured effects, not estimates, and a bootstrap over the pairs says how sure the backbone's recall site's membership in each run's top k and the share of its effect each run carries are); and per VLM site its reuse, the cosine between what it writes differently for the pair and what the backbone's same site writes for the names (attribution alone cannot tell recall from hop 1 passing through a site). The paper finds the backbone's recall in early MLPs at the entity's last token, and degraded VLMs not using them from the image.",
    run: (model, source, spec, ctx) => m.circuit().circuitExperiment(model, source, spec, ctx),
    view: { kind: 'attribution-map', build: views.circuitView },
    magic: { name: 'circuit' },
    demo: true,
  }),
] as const;

type Builtin = (typeof BUILTIN_EXPERIMENTS)[number];

/**
 * Each built-in kind's spec and summary types, read off the definitions above (the one list of kinds):
 * `runExperiment({kind: 'probe', ...})` resolves to a result whose `summary` is a ProbeSummary, so notebook
 * cells and `hs.` completion see `summary.resolution.image`, not `unknown`.
 */
export type ExperimentTypes = {
  [D in Builtin as D extends ExperimentDefinition<infer S, object> ? S['kind'] : never]: D extends ExperimentDefinition<infer S, infer M> ? { spec: S; summary: M } : never;
};

/** The kinds the library ships (a type for specs; `experimentKinds()` also lists registered ones). */
export type ExperimentKind = keyof ExperimentTypes;

const registry = new Map<string, AnyDefinition>(BUILTIN_EXPERIMENTS.map((d) => [d.kind, d as unknown as AnyDefinition]));

/**
 * Adds a kind (an extension or a test's toy kind). Its schema must exist; a kind or magic name already taken
 * is an error, so an extension cannot silently replace a paper's experiment.
 */
export function registerExperiment<S extends SpecBase, M extends object>(def: ExperimentDefinition<S, M>): ExperimentDefinition<S, M> {
  if (registry.has(def.kind)) throw new SpecError(`experiment kind "${def.kind}" is already registered; pick another kind name`, 'kind');
  const clash = [...registry.values()].find((d) => d.magic.name === def.magic.name);
  if (clash) throw new SpecError(`magic %${def.magic.name} already runs "${clash.kind}"; pick another magic name for "${def.kind}"`, 'magic');
  readSchemaFile(schemaFile(def));
  registry.set(def.kind, widen(def));
  return def;
}

/** Removes a registered kind (tests clean up their toy kinds); the built-in kinds stay. */
export function unregisterExperiment(kind: string): void {
  if (BUILTIN_EXPERIMENTS.some((d) => d.kind === kind)) throw new SpecError(`"${kind}" is a built-in experiment and cannot be removed`, 'kind');
  registry.delete(kind);
}

/** Every definition, built-in first, in registration order. */
export function experimentDefinitions(): AnyDefinition[] {
  return [...registry.values()];
}

export function experimentKinds(): string[] {
  return [...registry.keys()];
}

export function findExperiment(kind: unknown): AnyDefinition | undefined {
  return typeof kind === 'string' ? registry.get(kind) : undefined;
}

/** The definition of `kind`, or a SpecError listing the kinds there are. */
export function experimentDefinition(kind: unknown): AnyDefinition {
  const def = findExperiment(kind);
  if (!def) throw new SpecError(`field "kind" ${JSON.stringify(kind)} is not an experiment; use one of ${experimentKinds().join(', ')}`, 'kind');
  return def;
}

/** The view kind a kind's results are drawn with (the kernel shows it while waiting for the first rows). */
export function viewKindOf(kind: string): ViewKind | null {
  return findExperiment(kind)?.view.kind ?? null;
}

export function schemaFile(def: Pick<AnyDefinition, 'kind' | 'schema'>): string {
  const name = def.schema ?? def.kind;
  return path.isAbsolute(name) ? name : path.join(SCHEMA_DIR, `${name}.json`);
}

/** The flags of a kind's own spec fields, derived from its schema (see spec-options.ts). */
export function experimentOptions(def: AnyDefinition): SpecOption[] {
  return specOptions(readSchemaFile(schemaFile(def)), readSchemaFile(path.join(SCHEMA_DIR, 'common.json')), def.magic.flags);
}
