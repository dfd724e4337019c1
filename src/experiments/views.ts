// Widget views of experiment results, final or partial. Each kind's view is built from its table rows by one
// function here: a live sweep draws the rows it has streamed so far (issue 13: partial results had no view and
// the widget said "cannot be drawn" until the end), and the experiment's finished `summary.view` is the same
// function on all its rows, given what only the experiment knows (the probe's bootstrap intervals, the freezing
// split), so the live and the final figure cannot disagree. Logit lens, attribution and circuit add to the rows'
// view what the rows do not hold (token texts, the picture under the patches).
// Shapes: the `...Data` interfaces of src/report/views.ts. Pure functions, no tfjs: the kernel loads this early.
import { summarizeAccuracy } from '../data/stats';
import type { AttributionMapData, FreezeCurveData, KnockoutMapData, LayerSwitchData, LogitLensData, ProbeAccuracyData, RecoveryCurveData } from '../report/views';
import type { Row } from './checkpoint';
import { CIRCUIT_RUNS, COMPONENTS, GROUPS, circuitMeans, everySiteExact, siteKey, type CircuitRun } from './circuit-sites';
import type { CrossPatchSpec } from './cross-patch';
import type { FreezeExperimentSpec } from './freeze';
import type { KnockoutExperimentSpec } from './knockout';
import type { ProbeSpec } from './probe';
import type { RecallGapSpec } from './recall-gap';
import type { RecoverySpec } from './recovery';
import type { SpecBase } from './spec';
import { resolutionLayer } from './resolution';
import { pairSwitchLayer, switchLayer } from './switch-layer';

/** What a view builder sees: the spec, the rows so far, the summary (`partial: true` while running). */
export interface ViewInput<S = SpecBase> {
  spec: S;
  rows: readonly Row[];
  summary: Record<string, unknown>;
}

/** View data in the wire shape of src/report/views.ts (`D`), or null when nothing can be drawn yet. */
export type ViewBuilder<S = SpecBase, D extends object = object> = (input: ViewInput<S>) => D | null;

const mean = (xs: readonly number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const num = (v: unknown): number => (typeof v === 'number' ? v : NaN);
const finiteOrNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** The layer axis: the spec's layers when it names them, else the layers the rows have reached. */
function axis(spec: { layers?: number[] | null }, rows: readonly Row[], field = 'layer'): number[] {
  const given = spec.layers ? spec.layers : rows.map((r) => num(r[field])).filter(Number.isFinite);
  return [...new Set(given)].sort((a, b) => a - b);
}

/** Mean of `field` over the rows matching `pred` (booleans count 1/0; nulls skipped). */
function meanOf(rows: readonly Row[], pred: (r: Row) => boolean, field: string): number {
  return mean(rows.filter((r) => pred(r) && r[field] !== null && r[field] !== undefined).map((r) => Number(r[field])));
}

/**
 * Accuracy as the papers count it (experiments.md; src/data/stats.ts): the mean of `correct` per entity, then
 * the mean over entities, so an entity with many questions does not weigh more. Rows without a score are skipped.
 */
export function entityAccuracy(rows: readonly { entity?: unknown; correct?: unknown }[]): number {
  const scored = rows.filter((r) => r.correct !== null && r.correct !== undefined);
  return summarizeAccuracy(scored.map((r) => ({ entity: String(r.entity), correct: Number(r.correct) }))).mean;
}

/** Cross-patching's curves over `layers`: the share of runs naming the donor and the target, and the switch layer. */
export function switchCurves(rows: readonly Row[], layers: readonly number[]): { donorFraction: number[]; targetFraction: number[]; switchLayer: number | null } {
  const donorFraction = layers.map((l) => meanOf(rows, (r) => r.layer === l, 'namesDonor'));
  const targetFraction = layers.map((l) => meanOf(rows, (r) => r.layer === l, 'namesTarget'));
  return { donorFraction, targetFraction, switchLayer: switchLayer(layers, donorFraction, targetFraction) };
}

export const crossPatchView: ViewBuilder<CrossPatchSpec, LayerSwitchData> = ({ spec, rows }) => {
  const layers = axis(spec, rows);
  if (rows.length === 0 || layers.length === 0) return null;
  const pairIds = [...new Set(rows.map((r) => num(r.pair)))].filter(Number.isFinite).sort((a, b) => a - b);
  const pairs = pairIds.map((i) => {
    const rs = layers.map((l) => rows.find((r) => r.pair === i && r.layer === l));
    const first = rows.find((r) => r.pair === i)!;
    const namesDonor = rs.map((r) => (r ? Boolean(r.namesDonor) : null));
    const namesTarget = rs.map((r) => (r ? Boolean(r.namesTarget) : null));
    return {
      donor: String(first.donor),
      target: String(first.target),
      donorType: typeof first.donorType === 'string' ? first.donorType : null,
      targetType: typeof first.targetType === 'string' ? first.targetType : null,
      namesDonor,
      namesTarget,
      generations: rs.map((r) => (r ? String(r.generation) : null)),
      switchLayer: pairSwitchLayer(layers, namesDonor.map(Boolean), namesTarget.map(Boolean)),
    };
  });
  return { layers, ...switchCurves(rows, layers), runs: pairIds.length, pairs, model: null };
};

export const freezeView: ViewBuilder<FreezeExperimentSpec, FreezeCurveData> = ({ spec, rows, summary }) => {
  const sourceLayers = axis(spec, rows, 'sourceLayer');
  if (rows.length === 0 || sourceLayers.length === 0) return null;
  const identifiedAt = (l: number, pred: (r: Row) => boolean = () => true) => meanOf(rows, (r) => r.sourceLayer === l && pred(r), 'identified');
  const types = [...new Set(rows.map((r) => String(r.type)))];
  // The early / late split is measured after the sweep (a finished result's summary has it). The view draws it
  // only when both groups have entities: an empty group's accuracy is NaN.
  const split = summary.split as FreezeCurveData['split'] | undefined;
  return {
    sourceLayers,
    identified: sourceLayers.map((l) => identifiedAt(l)),
    freezeUntil: typeof rows[0].until === 'number' ? rows[0].until : null,
    entities: new Set(rows.map((r) => r.entity)).size,
    earlyCutoff: typeof summary.earlyCutoff === 'number' ? summary.earlyCutoff : null,
    split: split && [split.early, split.late].every((g) => g.n > 0) ? split : null,
    series: types.map((t) => ({ name: t, identified: sourceLayers.map((l) => identifiedAt(l, (r) => r.type === t)) })),
  };
};

/**
 * Knockout's cells, one computation for its summary and its view: the edge sets in the spec's order (the rows'
 * order differs: an edge set of one modality first appears with that modality's prompts), the windows in the
 * order the rows first give them (a finished sweep's rows are in job order, so the spec's: lab 2 reads its bands
 * by index), the mean relative change per cell, and the accuracy per entity, then over entities.
 */
export function knockoutCells(spec: KnockoutExperimentSpec, rows: readonly Row[]) {
  const knocked = rows.filter((r) => r.edges !== 'none' && r.window !== null);
  // One column per window (its label), placed at its centre layer.
  const windows = new Map<number | string, number>();
  for (const r of knocked) if (!windows.has(r.window as number | string)) windows.set(r.window as number | string, num(r.centre));
  const cols = [...windows.entries()];
  const order = spec.edges.map((e) => (typeof e === 'string' ? e : e.name));
  const rank = (e: string) => (order.includes(e) ? order.indexOf(e) : order.length);
  const edges = [...new Set(knocked.map((r) => String(r.edges)))].sort((a, b) => rank(a) - rank(b));
  const cell = (e: string, w: unknown) => knocked.filter((r) => r.edges === e && r.window === w);
  return {
    edges,
    windows: cols.map(([w]) => w),
    centres: cols.map(([, centre]) => centre),
    relChange: edges.map((e) => cols.map(([w]) => meanOf(cell(e, w), () => true, 'relChange'))),
    accuracy: spec.accuracy ? edges.map((e) => cols.map(([w]) => entityAccuracy(cell(e, w)))) : null,
  };
}

export const knockoutView: ViewBuilder<KnockoutExperimentSpec, KnockoutMapData> = ({ spec, rows }) => knockoutMap(spec, knockoutCells(spec, rows));

/** The knockout map of cells already computed (the experiment's summary has them; null when there are none). */
export function knockoutMap(spec: KnockoutExperimentSpec, c: ReturnType<typeof knockoutCells>): KnockoutMapData | null {
  if (c.edges.length === 0) return null;
  return {
    layers: c.centres,
    windows: c.windows,
    edgeSets: c.edges.map((e) => e.replace('->', ' → ')),
    relChange: c.relChange,
    window: spec.bands || spec.fromLayer !== null ? null : spec.window,
    accuracy: c.accuracy,
  };
}

export const probeView: ViewBuilder<ProbeSpec, ProbeAccuracyData> = ({ spec, rows, summary }) => {
  const layers = axis(spec, rows);
  if (rows.length === 0 || layers.length === 0) return null;
  const curve = (m: string) => (rows.some((r) => r.modality === m) ? layers.map((l) => num(rows.find((r) => r.modality === m && r.layer === l)?.testAcc)) : null);
  const image = curve('image');
  const text = curve('text');
  const transfer = curve('transfer');
  // The bootstrap intervals are drawn after the fits (a finished result's summary has them).
  const ci = summary.resolutionCI as { layer?: ProbeAccuracyData['resolutionCI'] } | null | undefined;
  return {
    layers,
    image,
    text,
    ...(transfer ? { transfer } : {}),
    threshold: finiteOrNull(spec.threshold),
    resolution: { image: resolutionLayer(layers, image, spec), text: resolutionLayer(layers, text, spec), ...(transfer ? { transfer: resolutionLayer(layers, transfer, spec) } : {}) },
    ...(ci?.layer ? { resolutionCI: ci.layer } : {}),
    thresholdOf: spec.thresholdOf,
    chance: finiteOrNull(num(rows[0].chance)),
    position: spec.position,
    target: spec.target === 'entity' ? 'entity identity' : spec.target,
  };
};

/** Label of a token position when the token text is not in the rows: its patch, or its index. */
function positionLabel(r: Row): { label: string; kind: 'image' | 'text' } {
  if (r.kind === 'image') return { label: r.gridRow !== null && r.gridRow !== undefined ? `img ${r.gridRow},${r.gridCol}` : `img ${r.position}`, kind: 'image' };
  return { label: typeof r.inputText === 'string' ? r.inputText : `pos ${r.position}`, kind: 'text' };
}

export const logitLensView: ViewBuilder<SpecBase, LogitLensData> = ({ rows }) => {
  if (rows.length === 0) return null;
  const mine = rows.filter((r) => r.prompt === rows[0].prompt);
  const layers = [...new Set(mine.map((r) => num(r.layer)))].sort((a, b) => a - b);
  const positions = [...new Set(mine.map((r) => num(r.position)))].sort((a, b) => a - b);
  const at = (l: number, p: number) => mine.filter((r) => r.layer === l && r.position === p).sort((a, b) => num(a.rank) - num(b.rank));
  // The entity's first name token, whose probability every row carries (pEntity): the grid's colour when known.
  const token = mine.find((r) => typeof r.entityToken === 'string')?.entityToken;
  return {
    layers,
    positions: positions.map((p) => positionLabel(mine.find((r) => r.position === p)!)),
    topTokens: layers.map((l) => positions.map((p) => at(l, p).map((r) => String(r.tokenText)))),
    topProbs: layers.map((l) => positions.map((p) => at(l, p).map((r) => num(r.prob)))),
    target: typeof token === 'string' ? { token, probs: layers.map((l) => positions.map((p) => num(at(l, p)[0]?.pEntity))) } : null,
    image: null,
  };
};

export const attributionView: ViewBuilder<SpecBase, AttributionMapData> = ({ rows }) => {
  if (rows.length === 0) return null;
  const mine = rows.filter((r) => r.pair === rows[0].pair);
  const layers = [...new Set(mine.map((r) => num(r.layer)))].sort((a, b) => a - b);
  const positions = [...new Set(mine.map((r) => num(r.position)))].sort((a, b) => a - b);
  const score = (l: number, p: number) => num(mine.find((r) => r.layer === l && r.position === p)?.score);
  return {
    layers,
    positions: positions.map((p) => positionLabel(mine.find((r) => r.position === p)!)),
    scores: layers.map((l) => positions.map((p) => score(l, p))),
    metric: typeof mine[0].metric === 'string' ? mine[0].metric : null,
    image: null,
    patchScores: null,
    patchLabel: null,
    confirmed: mine.filter((r) => r.exact !== null && r.exact !== undefined).map((r) => ({ layer: num(r.layer), position: num(r.position), exact: num(r.exact) })),
  };
};

export const recallGapView: ViewBuilder<RecallGapSpec> = ({ spec, rows }) => {
  const answers = rows.filter((r) => r.condition === 'text' || r.condition === 'image');
  if (!answers.some((r) => r.condition === 'text') || !answers.some((r) => r.condition === 'image')) return null;
  // The experiment's own summary maths (loaded on demand: it pulls in the model code the kernel starts without).
  const { gapSummary } = require('./recall-gap') as typeof import('./recall-gap');
  return gapSummary(answers as unknown as Parameters<typeof gapSummary>[0], spec.match).view as Record<string, unknown>;
};

export const recoveryView: ViewBuilder<RecoverySpec, RecoveryCurveData> = ({ spec, rows }) => {
  const patched = rows.filter((r) => r.condition === 'patched');
  const layers = axis(spec, patched);
  if (layers.length === 0) return null;
  const acc = (pred: (r: Row) => boolean) => entityAccuracy(rows.filter(pred));
  return {
    layers,
    patched: layers.map((l) => acc((r) => r.condition === 'patched' && r.layer === l)),
    imageAcc: finiteOrNull(acc((r) => r.condition === 'image')),
    textAcc: finiteOrNull(acc((r) => r.condition === 'text')),
    cotAcc: finiteOrNull(acc((r) => r.condition === 'cot')),
    position: spec.position,
  };
};

/**
 * The view: a heatmap of layer × site (run · component · position group), the mean score over the pairs seen
 * so far, with the exact-patching checks of the first pair marked, and beside it the VLM runs' mean reuse per
 * site (cosine with what the backbone's same site writes; 1 = the same computation).
 * When every site of every pair was re-measured (`everySiteExact`, the rule `summary.exact` uses), the map draws
 * the measured effects instead of the estimates. The estimate fails where the contrast lies, at layer 0's MLP on
 * the entity's last token: on the shipped teaching pair the backbone's effect there is −8.75 against an estimate
 * of −2.71, and the late image run's estimate, +0.50, has the other sign from its effect, −0.12 (data/teaching/
 * README.md, session 33). On estimates, the image lights those cells up in a model that resolves it too late as
 * well as in one that resolves it in time (8-layer pair: −2.15 late, −1.55 early); reuse then tells them apart
 * (at the entity's last token, layer 0: 0.29 against 0.90 on the 12-layer pair; sessions 26 and 32).
 */
export const circuitView: ViewBuilder<SpecBase> = ({ spec, rows }) => {
  if (rows.length === 0) return null;
  const runs = CIRCUIT_RUNS.filter((r) => rows.some((x) => x.run === r));
  const exact = everySiteExact(rows);
  const means = new Map(runs.map((r) => [r, new Map(circuitMeans(rows, r, exact ? 'exact' : 'score').map((s) => [siteKey(s), s.score]))]));
  const layers = [...new Set(rows.map((r) => Number(r.layer)))].sort((a, b) => a - b);
  const sitesOf = (rs: readonly CircuitRun[]) => rs.flatMap((run) => COMPONENTS.flatMap((component) => GROUPS.map((group) => ({ run, component, group }))));
  const cols = sitesOf(runs);
  const short = { 'backbone-text': 'LLM·text', 'vlm-text': 'VLM·text', 'vlm-image': 'VLM·image' } as const;
  // Each pair's metric names its own answers' tokens: over several pairs the map is a mean of the spec's metric.
  const metrics = new Set(rows.map((r) => r.metric));
  const pairs = new Set(rows.map((r) => r.pair)).size;
  const metricName = metrics.size === 1 && typeof rows[0].metric === 'string' ? rows[0].metric : `${String((spec as { metric?: unknown }).metric ?? 'metric')}, mean over ${pairs} pairs`;
  // Marks on the cells the first pair re-measured; none when every cell is a measured effect.
  const first = exact ? [] : rows.filter((r) => r.pair === rows[0].pair && r.exact !== null && r.exact !== undefined);
  // Reuse columns: the VLM runs whose rows carry one (tables written before the column have none).
  const reuseRuns = runs.filter((r) => r !== 'backbone-text' && rows.some((x) => x.run === r && x.reuse !== null && x.reuse !== undefined));
  const reuse = new Map(reuseRuns.map((r) => [r, new Map(circuitMeans(rows, r, 'reuse').map((s) => [siteKey(s), s.score]))]));
  const reuseCols = sitesOf(reuseRuns);
  type Site = (typeof cols)[number];
  const column = (c: Site) => ({ label: `${short[c.run]} ${c.component === 'mlp_out' ? 'mlp' : 'attn'} ${c.group}`, kind: c.run === 'vlm-image' ? ('image' as const) : ('text' as const) });
  /** A run's per-site mean at layer `l` (undefined: no pair gave one). */
  const at = (byRun: Map<CircuitRun, Map<string, number>>, c: Site, l: number) => byRun.get(c.run)!.get(siteKey({ component: c.component, layer: l, group: c.group }));
  return {
    layers,
    positions: cols.map(column),
    scores: layers.map((l) => cols.map((c) => at(means, c, l) ?? 0)),
    metric: metricName,
    image: null,
    patchScores: null,
    patchLabel: null,
    confirmed: first.map((r) => ({ layer: Number(r.layer), position: cols.findIndex((c) => c.run === r.run && c.component === r.component && c.group === r.group), exact: Number(r.exact) })),
    columns: 'site',
    ...(exact ? { measured: 'exact' as const } : {}),
    similarity: reuseCols.length
      ? {
          title: "reuse: cosine with the backbone's site",
          positions: reuseCols.map(column),
          // null (drawn blank), not 0: a site no pair gave a cosine is not a site that computes something else.
          scores: layers.map((l) => reuseCols.map((c) => at(reuse, c, l) ?? null)),
        }
      : null,
  };
};
