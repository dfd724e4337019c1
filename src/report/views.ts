// View-state schemas shared by the kernel (which sends them), the widgets (which draw them) and the static
// page writer. Pure TypeScript, no DOM and no Node APIs: the browser bundle imports this file as is.
//
// A HopscopeView widget's state is `{view, title, data, progress, error}`. `data` depends on `view`; each
// `...Data` interface below documents its fields. Numeric fields accept several wire forms (see `NumbersIn`)
// because the kernel may send arrays as binary buffers (they arrive as DataView at their buffer path) or as
// JSON lists; `validateViewState` turns every form into plain `number[]` / `number[][]` with NaN for "not
// computed yet", so renderers only ever see one shape.

import {
  Problems,
  boolList,
  cube,
  describe,
  field,
  fraction,
  isRecord,
  list,
  matrix,
  numbers,
  optionalNumber,
  optionalChoice,
  optionalNumbers,
  optionalString,
  required,
  requiredAxis,
  requiredNumber,
  requiredNumbers,
  stringList,
} from './view-wire';
import { THRESHOLD_OF, resolutionLayer, type Interval, type ThresholdOf } from '../experiments/resolution';
import { switchLayer } from '../experiments/switch-layer';
import { sniffPng } from '../io/image/header';
import { MAX_COMPARED, VIEW_KINDS, isViewKind, type Progress, type ViewKind } from './protocol';

export type { BinaryArray, Dtype, MatrixIn, NumbersIn } from './view-wire';

export { WIDGET_NAMES, WIDGETS_VERSION, WIDGET_STATE_KEYS, MAX_COMPARED, VIEW_KINDS, TABLE_VIEW, isViewKind, isCellResult } from './protocol';
export type { ViewKind, Progress, RunCellRequest, CellResult, WireView, WidgetState, TableData, ComparedData } from './protocol';

// ---------------------------------------------------------------------------------------------------------
// Normalised data, per view. Field comments are the schema documentation.

/** A token position on the x axis of the logit-lens and attribution views. */
export interface PositionInfo {
  /** What to print on the axis: the token text, or e.g. "img 17". */
  label: string;
  /** Image positions are also drawn on the patch grid over the picture. */
  kind: 'image' | 'text';
}

/**
 * The picture behind the patch grid. Give `png` (base64, with or without a `data:` prefix) or `rgb` (uint8
 * H×W×3, row-major). `width`/`height` are read from the PNG header when omitted and are required with `rgb`.
 * The grid has `gridRows` × `gridCols` patches; `positions[i]` is the index (into the view's `positions`) of
 * patch i in row-major order, defaulting to the image-kind positions in order.
 */
export interface ImageSpec {
  png: string | null;
  rgb: number[] | null;
  width: number;
  height: number;
  gridRows: number;
  gridCols: number;
  positions: number[];
}

/** One donor → target cross-patching run, for the drill-down. Per-layer arrays align with `layers`. */
export interface LayerSwitchPair {
  donor: string;
  target: string;
  donorType: string | null;
  targetType: string | null;
  /** Did the generation name the donor when patched at this layer? null = not run yet. */
  namesDonor: (boolean | null)[];
  /** Did it name the target (the entity actually shown)? */
  namesTarget: (boolean | null)[];
  /** The greedy generation per layer, shown on hover. */
  generations: (string | null)[];
  /** The first patched layer from which this run names the target and never the donor again (null: none). */
  switchLayer?: number | null;
}

/**
 * `layer-switch`: cross-patching. Runs of target B with donor A's image-position states injected at one
 * layer; the fraction of runs naming the donor vs the target per layer, and the switch layer where
 * predictions flip from donor to target (computed as the first layer with target ≥ donor when omitted).
 */
export interface LayerSwitchData {
  /** Patched layers, ascending (x axis). Injecting at l = overwriting the input of block l. */
  layers: number[];
  /** Fraction (0..1) of runs naming the donor, per layer. */
  donorFraction: number[];
  /** Fraction (0..1) of runs naming the target, per layer. */
  targetFraction: number[];
  /** Number of donor–target runs behind each fraction (shown on hover). */
  runs: number | null;
  switchLayer: number | null;
  pairs: LayerSwitchPair[];
  model: string | null;
}

/** Accuracy of a group of entities in the text and image conditions. */
export interface GroupAccuracy {
  n: number;
  visualAcc: number;
  textAcc: number;
}

/**
 * `freeze-curve`: forward patching. Image-position inputs of blocks l+1..freezeUntil are pinned to block l's
 * output; y = fraction of entities still identified, per source layer l. Entities identified when frozen
 * from layers < `earlyCutoff` are early-identified; `split` compares their accuracies with the rest.
 */
export interface FreezeCurveData {
  sourceLayers: number[];
  /** Fraction (0..1) still identified, per source layer. */
  identified: number[];
  freezeUntil: number | null;
  /** Entities behind each fraction. */
  entities: number | null;
  earlyCutoff: number | null;
  split: { early: GroupAccuracy; late: GroupAccuracy } | null;
  /** Optional extra curves (e.g. per entity type), each aligned with `sourceLayers`. */
  series: { name: string; identified: number[] }[];
}

/**
 * `knockout-map`: attention knockout. Rows = edge sets (e.g. "image → last"), columns = layer windows
 * (centre layer); cell = relative change of the original answer's probability, (p_new − p_base)/p_base.
 */
export interface KnockoutMapData {
  /** Window centres (x axis). */
  layers: number[];
  /** Each column's window as the knockout table labels it: its centre, a band "a-b", or "k-end". */
  windows?: (number | string)[];
  edgeSets: string[];
  /** [edgeSet][layer]; NaN = not computed yet. */
  relChange: number[][];
  /** Window width w (layers l−⌊w/2⌋..l+⌊w/2⌋ blocked); shown on hover. */
  window: number | null;
  /** Optional accuracy under knockout, same shape as relChange. */
  accuracy: number[][] | null;
}

/**
 * `probe-accuracy`: linear probes for entity identity per layer, on image and text prompts. The resolution
 * layer is the first layer at or above `threshold` (computed when omitted and a threshold is given).
 */
export interface ProbeAccuracyData {
  layers: number[];
  /** null: no image prompts were probed (probe spec `modality: 'text'`); likewise `text`. */
  image: number[] | null;
  text: number[] | null;
  /** A probe fit on the text prompts and scored on the image prompts (probe spec `transfer`). */
  transfer?: number[] | null;
  threshold: number | null;
  /** What `threshold` is a share of (the probe spec's `thresholdOf`): held-out accuracy, or the curve's best. */
  thresholdOf?: ThresholdOf;
  resolution: { image: number | null; text: number | null; transfer?: number | null };
  /** Each resolution layer's 95 % interval over the probe's cluster bootstrap of held-out entities. */
  resolutionCI?: Partial<Record<'image' | 'text' | 'transfer', Interval>>;
  chance: number | null;
  /** Where the residual was read, e.g. "last image token". */
  position: string | null;
  /** What the probe predicts, e.g. "entity identity". */
  target: string | null;
}

/**
 * `logit-lens`: softmax(lm_head(final_norm(h_l))) per layer and position, top-k tokens. The grid colour is
 * the top-1 probability, or the probability of `target.token` when given.
 */
export interface LogitLensData {
  layers: number[];
  positions: PositionInfo[];
  /** [layer][position][k] token strings. */
  topTokens: string[][][];
  /** [layer][position][k] probabilities; a flat binary form needs shape [L, P, K]. */
  topProbs: number[][][];
  /** Probability of one token of interest (e.g. the entity's first name token), [layer][position]. */
  target: { token: string; probs: number[][] } | null;
  image: ImageSpec | null;
}

/**
 * `attribution-map`: attribution-patching scores per (layer, position), and any per-patch score drawn on the
 * picture (`patchScores`, gridRows×gridCols row-major; defaults to the chosen layer's scores at image
 * positions). `confirmed` lists cells re-measured with exact activation patching.
 */
export interface AttributionMapData {
  layers: number[];
  positions: PositionInfo[];
  /** [layer][position] */
  scores: number[][];
  metric: string | null;
  image: ImageSpec | null;
  patchScores: number[] | null;
  patchLabel: string | null;
  confirmed: { layer: number; position: number; exact: number }[];
  /**
   * Optional: a second map on the same layers, of cosines in [-1, 1] (NaN: none), drawn beside the scores on a
   * fixed scale. The circuit experiment's reuse: what each VLM site writes differently for the pair against what
   * the backbone's same site writes for the names. Attribution says where a site matters, this what it computes.
   */
  similarity?: { title: string; positions: PositionInfo[]; scores: number[][] } | null;
  /**
   * What a column is: a token position (the default) or a site (the circuit's run · component · position group,
   * whose "image" columns are the image run's sites, not image tokens). Names the axis, the band and the hover.
   */
  columns?: AttributionColumns;
  /**
   * What `scores` are: attribution's linear estimates (the default, `confirmed` marking the cells re-measured) or
   * effects measured by exact patching at every cell (the circuit when every site was re-measured). The figure's
   * title and hover say which: an estimate can have the other sign from the effect (data/teaching/README.md).
   */
  measured?: AttributionMeasured;
}

export const ATTRIBUTION_COLUMNS = ['position', 'site'] as const;
export type AttributionColumns = (typeof ATTRIBUTION_COLUMNS)[number];
export const ATTRIBUTION_MEASURED = ['estimate', 'exact'] as const;
export type AttributionMeasured = (typeof ATTRIBUTION_MEASURED)[number];
/**
 * What an attribution map's cells are, as its figures title it (widget and SVG / PNG / PDF alike); `marks`: the
 * figure marks the re-measured cells with × (the widget does, the static figures do not).
 */
export const attributionMapTitle = (d: Pick<AttributionMapData, 'measured' | 'confirmed'>, marks: boolean): string =>
  d.measured === 'exact' ? 'exact patching, every cell measured' : `attribution estimate${marks && d.confirmed.length ? ' (×: re-measured by exact patching)' : ''}`;

/** One row of the recall-gap table: accuracy with a 95% confidence interval per condition. */
export interface RecallGapRow {
  type: string;
  n: number;
  textAcc: number;
  textCI: [number, number];
  imageAcc: number;
  imageCI: [number, number];
  /** Paired test (Wilcoxon signed-rank) of text vs image, if computed. */
  pValue: number | null;
}

/** `recall-gap`: text vs image factual accuracy per entity type (identified entities only). */
export interface RecallGapData {
  rows: RecallGapRow[];
  overall: RecallGapRow | null;
  model: string | null;
  /** Which answer-match rule produced the accuracies (e.g. "popvqa-words", "alias-exact"). */
  matchRule: string | null;
}

/**
 * `recovery-curve`: backbone → VLM patching (Cohen et al. §5). The text-only backbone's entity state is written
 * into the VLM at one layer; y = factual accuracy of the patched image prompts, per layer, against the image,
 * text and chain-of-thought baselines (horizontal lines; null = not measured yet).
 */
export interface RecoveryCurveData {
  layers: number[];
  /** Accuracy (0..1) of the patched prompts per layer; NaN = not run yet. */
  patched: number[];
  imageAcc: number | null;
  textAcc: number | null;
  cotAcc: number | null;
  /** Where the state was written, e.g. "last-image". */
  position: string | null;
}

export interface ViewDataMap {
  'layer-switch': LayerSwitchData;
  'freeze-curve': FreezeCurveData;
  'knockout-map': KnockoutMapData;
  'probe-accuracy': ProbeAccuracyData;
  'logit-lens': LogitLensData;
  'attribution-map': AttributionMapData;
  'recall-gap': RecallGapData;
  'recovery-curve': RecoveryCurveData;
}

export interface ViewState<K extends ViewKind = ViewKind> {
  view: K;
  title: string;
  data: ViewDataMap[K];
  progress: Progress | null;
  error: string | null;
  /** The model behind `data` when others are compared with it (legend / panel name); null otherwise. */
  label: string | null;
  /** Other models' data of the same kind, validated like `data`, drawn on the same figure; [] = none. */
  compare: { label: string; data: ViewDataMap[K] }[];
}
export type AnyViewState = { [K in ViewKind]: ViewState<K> }[ViewKind];

export type ValidationResult =
  | { ok: true; state: AnyViewState }
  | {
      ok: false;
      view: string | null;
      title: string;
      progress: Progress | null;
      error: string | null;
      problems: string[];
      /** No data yet (null or {}): a sweep that has not reported, or one that failed before any result. */
      empty: boolean;
    };

// ---------------------------------------------------------------------------------------------------------
// Validation

/** The cross-patching switch layer (src/experiments/switch-layer.ts: one rule for the library, views and eval). */
export const computeSwitchLayer = switchLayer;

function layerSwitch(d: Record<string, unknown>, path: string, p: Problems): LayerSwitchData | null {
  const layers = requiredAxis(d, 'layers', path, p);
  if (!layers) return null;
  const n = layers.length;
  const donorFraction = requiredNumbers(d, 'donorFraction', path, p, n);
  const targetFraction = requiredNumbers(d, 'targetFraction', path, p, n);
  if (donorFraction) fraction(donorFraction, `${path}.donorFraction`, p);
  if (targetFraction) fraction(targetFraction, `${path}.targetFraction`, p);
  const pairsIn = list(field(d, 'pairs'), `${path}.pairs`, p);
  const pairs: LayerSwitchPair[] = [];
  for (const [i, raw] of (pairsIn ?? []).entries()) {
    const pp = `${path}.pairs[${i}]`;
    if (!isRecord(raw)) {
      p.add(pp, `expected an object {donor, target, namesDonor, namesTarget}, got ${describe(raw)}`);
      continue;
    }
    const donor = raw.donor;
    const target = raw.target;
    if (typeof donor !== 'string') p.add(`${pp}.donor`, `expected the donor entity's name, got ${describe(donor)}`);
    if (typeof target !== 'string') p.add(`${pp}.target`, `expected the target entity's name, got ${describe(target)}`);
    const namesDonor = boolList(raw.namesDonor, `${pp}.namesDonor`, p, n);
    const namesTarget = boolList(raw.namesTarget, `${pp}.namesTarget`, p, n);
    let generations: (string | null)[] = new Array<string | null>(n).fill(null);
    if (raw.generations !== undefined && raw.generations !== null) {
      const g = list(raw.generations, `${pp}.generations`, p);
      if (g && g.length > n) p.add(`${pp}.generations`, `has ${g.length} entries but the axis has only ${n}`);
      else if (g) generations = generations.map((_, j) => (typeof g[j] === 'string' ? (g[j] as string) : null));
    }
    if (typeof donor !== 'string' || typeof target !== 'string' || !namesDonor || !namesTarget) continue;
    pairs.push({
      donor,
      target,
      donorType: typeof raw.donorType === 'string' ? raw.donorType : null,
      targetType: typeof raw.targetType === 'string' ? raw.targetType : null,
      namesDonor,
      namesTarget,
      generations,
    });
  }
  if (!donorFraction || !targetFraction) return null;
  const given = optionalNumber(d, 'switchLayer', path, p);
  return {
    layers,
    donorFraction,
    targetFraction,
    runs: optionalNumber(d, 'runs', path, p),
    switchLayer: given ?? computeSwitchLayer(layers, donorFraction, targetFraction),
    pairs,
    model: optionalString(d, 'model', path, p),
  };
}

function groupAccuracy(v: unknown, path: string, p: Problems): GroupAccuracy | null {
  if (!isRecord(v)) {
    p.add(path, `expected {n, visualAcc, textAcc}, got ${describe(v)}`);
    return null;
  }
  const g = {
    n: requiredNumber(v.n, `${path}.n`, p),
    visualAcc: requiredNumber(v.visualAcc, `${path}.visualAcc`, p),
    textAcc: requiredNumber(v.textAcc, `${path}.textAcc`, p),
  };
  return Number.isNaN(g.n + g.visualAcc + g.textAcc) ? null : g;
}

function freezeCurve(d: Record<string, unknown>, path: string, p: Problems): FreezeCurveData | null {
  const sourceLayers = requiredAxis(d, 'sourceLayers', path, p);
  if (!sourceLayers) return null;
  const n = sourceLayers.length;
  const identified = requiredNumbers(d, 'identified', path, p, n);
  if (identified) fraction(identified, `${path}.identified`, p);
  let split: FreezeCurveData['split'] = null;
  const s = field(d, 'split');
  if (s !== undefined && s !== null) {
    if (!isRecord(s)) p.add(`${path}.split`, `expected {early, late}, got ${describe(s)}`);
    else {
      const early = groupAccuracy(s.early, `${path}.split.early`, p);
      const late = groupAccuracy(s.late, `${path}.split.late`, p);
      if (early && late) split = { early, late };
    }
  }
  const series: FreezeCurveData['series'] = [];
  for (const [i, raw] of (list(field(d, 'series'), `${path}.series`, p) ?? []).entries()) {
    if (!isRecord(raw) || typeof raw.name !== 'string') {
      p.add(`${path}.series[${i}]`, `expected {name, identified}, got ${describe(raw)}`);
      continue;
    }
    const ys = numbers(raw.identified, `${path}.series[${i}].identified`, p, n);
    if (ys) series.push({ name: raw.name, identified: ys });
  }
  if (!identified) return null;
  return {
    sourceLayers,
    identified,
    freezeUntil: optionalNumber(d, 'freezeUntil', path, p),
    entities: optionalNumber(d, 'entities', path, p),
    earlyCutoff: optionalNumber(d, 'earlyCutoff', path, p),
    split,
    series,
  };
}

function knockoutMap(d: Record<string, unknown>, path: string, p: Problems): KnockoutMapData | null {
  const layers = requiredAxis(d, 'layers', path, p);
  const es = required(d, 'edgeSets', path, p, 'the row labels, e.g. "image → last"');
  const edgeSets = es === undefined ? null : stringList(es, `${path}.edgeSets`, p);
  if (!layers || !edgeSets) return null;
  const rc = required(d, 'relChange', path, p, `${edgeSets.length}×${layers.length} relative probability changes`);
  if (rc === undefined) return null;
  const relChange = matrix(rc, `${path}.relChange`, p, edgeSets.length, layers.length);
  const acc = field(d, 'accuracy');
  const accuracy = acc === undefined || acc === null ? null : matrix(acc, `${path}.accuracy`, p, edgeSets.length, layers.length);
  if (!relChange) return null;
  return { layers, edgeSets, relChange, window: optionalNumber(d, 'window', path, p), accuracy };
}

function probeAccuracy(d: Record<string, unknown>, path: string, p: Problems): ProbeAccuracyData | null {
  const layers = requiredAxis(d, 'layers', path, p);
  if (!layers) return null;
  const image = optionalNumbers(d, 'image', path, p, layers.length);
  const text = optionalNumbers(d, 'text', path, p, layers.length);
  const transfer = optionalNumbers(d, 'transfer', path, p, layers.length);
  if (image) fraction(image, `${path}.image`, p);
  if (text) fraction(text, `${path}.text`, p);
  if (transfer) fraction(transfer, `${path}.transfer`, p);
  if (!image && !text) {
    p.add(`${path}.image`, `is missing, and so is text: a probe view draws one or both (${layers.length} values each, one per layer)`);
    return null;
  }
  const threshold = optionalNumber(d, 'threshold', path, p);
  // An unknown rule is reported (the state is refused); the layers below are then computed with the default.
  const rule = { threshold, thresholdOf: optionalChoice(d, 'thresholdOf', THRESHOLD_OF, 'accuracy', path, p) ?? 'accuracy' };
  const res = field(d, 'resolution');
  const given = (k: 'image' | 'text' | 'transfer', computed: number | null): number | null => {
    const v = isRecord(res) ? res[k] : undefined;
    return typeof v === 'number' ? v : v === null ? null : computed;
  };
  const resolution = {
    image: given('image', resolutionLayer(layers, image, rule)),
    text: given('text', resolutionLayer(layers, text, rule)),
    ...(transfer ? { transfer: given('transfer', resolutionLayer(layers, transfer, rule)) } : {}),
  };
  if (!isRecord(res) && res !== undefined && res !== null) p.add(`${path}.resolution`, `expected {image, text} layer numbers, got ${describe(res)}`);
  const resolutionCI = intervals(field(d, 'resolutionCI'), `${path}.resolutionCI`, p);
  return {
    layers,
    image,
    text,
    ...(transfer ? { transfer } : {}),
    threshold,
    ...(rule.thresholdOf === 'peak' ? { thresholdOf: rule.thresholdOf } : {}),
    resolution,
    ...(resolutionCI ? { resolutionCI } : {}),
    chance: optionalNumber(d, 'chance', path, p),
    position: optionalString(d, 'position', path, p),
    target: optionalString(d, 'target', path, p),
  };
}

/** probe-accuracy's optional intervals: {image?, text?, transfer?} each {low, high, agree}, layers or null. */
function intervals(v: unknown, path: string, p: Problems): ProbeAccuracyData['resolutionCI'] | null {
  if (v === undefined || v === null) return null;
  if (!isRecord(v)) {
    p.add(path, `expected {image, text, transfer} intervals, got ${describe(v)}`);
    return null;
  }
  const out: NonNullable<ProbeAccuracyData['resolutionCI']> = {};
  for (const [k, raw] of Object.entries(v)) {
    if (k !== 'image' && k !== 'text' && k !== 'transfer') {
      p.add(`${path}.${k}`, 'is not a curve (image, text, transfer)');
      continue;
    }
    const at = `${path}.${k}`;
    if (!isRecord(raw)) {
      p.add(at, `expected {low, high, agree}, got ${describe(raw)}`);
      continue;
    }
    const bound = (b: unknown, name: string) => {
      if (b === null || (typeof b === 'number' && Number.isInteger(b))) return b;
      p.add(`${at}.${name}`, `expected a layer or null (never resolves), got ${describe(b)}`);
      return undefined;
    };
    const low = bound(raw.low, 'low');
    const high = bound(raw.high, 'high');
    const agree = raw.agree;
    if (typeof agree !== 'number' || !(agree >= 0 && agree <= 1)) p.add(`${at}.agree`, `expected a share in [0, 1], got ${describe(agree)}`);
    // null is "never": it sorts after every layer, so a null low needs a null high.
    else if (low === null && high !== undefined && high !== null) p.add(at, `low null (never resolves) with high ${high}: null sorts after every layer`);
    else if (typeof low === 'number' && typeof high === 'number' && high < low) p.add(at, `low ${low} is above high ${high}`);
    else if (low !== undefined && high !== undefined) out[k] = { low, high, agree };
  }
  return out;
}

function positionsField(d: Record<string, unknown>, path: string, p: Problems): PositionInfo[] | null {
  const v = field(d, 'positions');
  if (v === undefined || v === null) {
    p.add(`${path}.positions`, 'is missing (one {label, kind} per token position)');
    return null;
  }
  if (!Array.isArray(v)) {
    p.add(`${path}.positions`, `expected a list of {label, kind}, got ${describe(v)}`);
    return null;
  }
  const out: PositionInfo[] = [];
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (typeof x === 'string') out.push({ label: x, kind: 'text' });
    else if (isRecord(x) && typeof x.label === 'string' && (x.kind === 'image' || x.kind === 'text')) out.push({ label: x.label, kind: x.kind });
    else {
      p.add(`${path}.positions[${i}]`, `expected {label: string, kind: "image" | "text"}, got ${describe(x)}`);
      return null;
    }
  }
  return out;
}

/** Width and height of a base64 PNG (with or without a `data:` prefix), from its header (src/io/image/header.ts). */
export function pngSize(base64: string): { width: number; height: number } | null {
  const head = base64.replace(/^data:[^,]*,/, '').slice(0, 32);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const bytes: number[] = [];
  let bits = 0;
  let acc = 0;
  for (const ch of head) {
    const v = alphabet.indexOf(ch);
    if (v < 0) break;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((acc >> bits) & 0xff);
    }
  }
  const h = sniffPng(Uint8Array.from(bytes));
  return h && { width: h.width, height: h.height };
}

function imageSpec(v: unknown, path: string, p: Problems, positions: PositionInfo[]): ImageSpec | null {
  if (v === undefined || v === null) return null;
  if (!isRecord(v)) {
    p.add(path, `expected {png | rgb, gridRows, gridCols, ...}, got ${describe(v)}`);
    return null;
  }
  const gridRows = requiredNumber(v.gridRows, `${path}.gridRows`, p);
  const gridCols = requiredNumber(v.gridCols, `${path}.gridCols`, p);
  if (Number.isNaN(gridRows) || Number.isNaN(gridCols)) return null;
  let png: string | null = null;
  let rgb: number[] | null = null;
  let width = typeof v.width === 'number' ? v.width : NaN;
  let height = typeof v.height === 'number' ? v.height : NaN;
  if (typeof v.png === 'string') {
    png = v.png.startsWith('data:') ? v.png : `data:image/png;base64,${v.png}`;
    const size = pngSize(v.png);
    if (!size) {
      p.add(`${path}.png`, 'is not a base64 PNG (no PNG header found)');
      return null;
    }
    if (Number.isNaN(width)) width = size.width;
    if (Number.isNaN(height)) height = size.height;
  } else if (v.rgb !== undefined && v.rgb !== null) {
    if (Number.isNaN(width) || Number.isNaN(height)) {
      p.add(path, 'an rgb buffer needs width and height');
      return null;
    }
    rgb = numbers(v.rgb, `${path}.rgb`, p, null, 'uint8');
    if (!rgb) return null;
    if (rgb.length !== width * height * 3) {
      p.add(`${path}.rgb`, `has ${rgb.length} values; ${width}×${height}×3 = ${width * height * 3} expected`);
      return null;
    }
  } else {
    p.add(path, 'needs png (base64) or rgb (uint8 H×W×3 with width and height)');
    return null;
  }
  let pos: number[];
  if (v.positions !== undefined && v.positions !== null) {
    const xs = numbers(v.positions, `${path}.positions`, p, null, 'int32');
    if (!xs) return null;
    pos = xs;
  } else {
    pos = positions.flatMap((x, i) => (x.kind === 'image' ? [i] : []));
  }
  if (pos.length !== gridRows * gridCols) {
    p.add(`${path}.positions`, `the ${gridRows}×${gridCols} grid needs ${gridRows * gridCols} image positions, got ${pos.length}`);
    return null;
  }
  const bad = pos.findIndex((x) => !Number.isInteger(x) || x < 0 || x >= positions.length);
  if (bad >= 0) {
    p.add(`${path}.positions[${bad}]`, `${pos[bad]} is not a position index (0..${positions.length - 1})`);
    return null;
  }
  return { png, rgb, width, height, gridRows, gridCols, positions: pos };
}

function tokenCube(v: unknown, path: string, p: Problems, d0: number, d1: number): string[][][] | null {
  if (!Array.isArray(v)) {
    p.add(path, `expected [layer][position][k] token strings, got ${describe(v)}`);
    return null;
  }
  if (v.length > d0) {
    p.add(path, `has ${v.length} layers but the axis has only ${d0}`);
    return null;
  }
  for (let i = 0; i < v.length; i++) {
    const plane = v[i];
    if (!Array.isArray(plane) || plane.length > d1) {
      p.add(`${path}[${i}]`, `expected at most ${d1} positions, got ${describe(plane)}`);
      return null;
    }
    for (let j = 0; j < plane.length; j++) {
      if (!Array.isArray(plane[j]) || !plane[j].every((t: unknown) => typeof t === 'string')) {
        p.add(`${path}[${i}][${j}]`, `expected a list of token strings, got ${describe(plane[j])}`);
        return null;
      }
    }
  }
  return v as string[][][];
}

function logitLens(d: Record<string, unknown>, path: string, p: Problems): LogitLensData | null {
  const layers = requiredAxis(d, 'layers', path, p);
  const positions = positionsField(d, path, p);
  if (!layers || !positions) return null;
  const tt = required(d, 'topTokens', path, p, '[layer][position][k] token strings');
  const topTokens = tt === undefined ? null : tokenCube(tt, `${path}.topTokens`, p, layers.length, positions.length);
  const tp = required(d, 'topProbs', path, p, '[layer][position][k] probabilities');
  const topProbs = tp === undefined ? null : cube(tp, `${path}.topProbs`, p, layers.length, positions.length);
  let target: LogitLensData['target'] = null;
  const t = field(d, 'target');
  if (t !== undefined && t !== null) {
    if (!isRecord(t) || typeof t.token !== 'string') p.add(`${path}.target`, `expected {token, probs}, got ${describe(t)}`);
    else {
      const probs = matrix(t.probs, `${path}.target.probs`, p, layers.length, positions.length);
      if (probs) target = { token: t.token, probs };
    }
  }
  const image = imageSpec(field(d, 'image'), `${path}.image`, p, positions);
  if (!topTokens || !topProbs) return null;
  return { layers, positions, topTokens, topProbs, target, image };
}

function attributionMap(d: Record<string, unknown>, path: string, p: Problems): AttributionMapData | null {
  const layers = requiredAxis(d, 'layers', path, p);
  const positions = positionsField(d, path, p);
  if (!layers || !positions) return null;
  const s = required(d, 'scores', path, p, `${layers.length}×${positions.length} scores, [layer][position]`);
  const scores = s === undefined ? null : matrix(s, `${path}.scores`, p, layers.length, positions.length);
  const image = imageSpec(field(d, 'image'), `${path}.image`, p, positions);
  let patchScores: number[] | null = null;
  const ps = field(d, 'patchScores');
  if (ps !== undefined && ps !== null) {
    if (!image) p.add(`${path}.patchScores`, 'needs image (the picture and its patch grid)');
    else patchScores = numbers(ps, `${path}.patchScores`, p, image.gridRows * image.gridCols);
  }
  const confirmed: AttributionMapData['confirmed'] = [];
  for (const [i, raw] of (list(field(d, 'confirmed'), `${path}.confirmed`, p) ?? []).entries()) {
    if (!isRecord(raw)) {
      p.add(`${path}.confirmed[${i}]`, `expected {layer, position, exact}, got ${describe(raw)}`);
      continue;
    }
    const c = {
      layer: requiredNumber(raw.layer, `${path}.confirmed[${i}].layer`, p),
      position: requiredNumber(raw.position, `${path}.confirmed[${i}].position`, p),
      exact: requiredNumber(raw.exact, `${path}.confirmed[${i}].exact`, p),
    };
    if (!Number.isNaN(c.layer + c.position + c.exact)) confirmed.push(c);
  }
  const similarity = similarityMap(field(d, 'similarity'), `${path}.similarity`, p, layers.length);
  const columns = optionalChoice(d, 'columns', ATTRIBUTION_COLUMNS, 'position', path, p, 'a column kind');
  const measured = optionalChoice(d, 'measured', ATTRIBUTION_MEASURED, 'estimate', path, p, 'what the scores are');
  if (!scores || similarity === undefined || !columns || !measured) return null;
  return {
    layers,
    positions,
    scores,
    metric: optionalString(d, 'metric', path, p),
    image,
    patchScores,
    patchLabel: optionalString(d, 'patchLabel', path, p),
    confirmed,
    ...(similarity ? { similarity } : {}),
    ...(columns === 'site' ? { columns: 'site' as const } : {}),
    ...(measured === 'exact' ? { measured: 'exact' as const } : {}),
  };
}

/** attribution-map's optional cosine map: null when absent, undefined when present but wrong (problems added). */
function similarityMap(v: unknown, path: string, p: Problems, rows: number): AttributionMapData['similarity'] | undefined {
  if (v === undefined || v === null) return null;
  if (!isRecord(v)) {
    p.add(path, `expected {title, positions, scores}, got ${describe(v)}`);
    return undefined;
  }
  const title = typeof v.title === 'string' ? v.title : null;
  if (title === null) p.add(`${path}.title`, `expected a string, got ${describe(v.title)}`);
  const positions = positionsField(v, path, p);
  const s = positions ? required(v, 'scores', path, p, `${rows}×${positions.length} cosines, [layer][column]`) : undefined;
  const scores = positions && s !== undefined ? matrix(s, `${path}.scores`, p, rows, positions.length) : null;
  const outside = scores?.flat().find((x) => Number.isFinite(x) && (x < -1 - 1e-6 || x > 1 + 1e-6));
  if (outside !== undefined) p.add(`${path}.scores`, `cosines lie in [-1, 1], got ${outside}`);
  return title !== null && positions && scores && outside === undefined ? { title, positions, scores } : undefined;
}

function ci(v: unknown, path: string, p: Problems): [number, number] | null {
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'number' || typeof v[1] !== 'number') {
    p.add(path, `expected [low, high], got ${describe(v)}`);
    return null;
  }
  if (v[0] > v[1]) {
    p.add(path, `low ${v[0]} is above high ${v[1]}`);
    return null;
  }
  return [v[0], v[1]];
}

function recallRow(v: unknown, path: string, p: Problems): RecallGapRow | null {
  if (!isRecord(v)) {
    p.add(path, `expected {type, n, textAcc, textCI, imageAcc, imageCI}, got ${describe(v)}`);
    return null;
  }
  if (typeof v.type !== 'string') p.add(`${path}.type`, `expected the entity type, got ${describe(v.type)}`);
  const n = requiredNumber(v.n, `${path}.n`, p);
  const textAcc = requiredNumber(v.textAcc, `${path}.textAcc`, p);
  const imageAcc = requiredNumber(v.imageAcc, `${path}.imageAcc`, p);
  const textCI = ci(v.textCI, `${path}.textCI`, p);
  const imageCI = ci(v.imageCI, `${path}.imageCI`, p);
  fraction([textAcc, imageAcc], `${path}.[textAcc, imageAcc]`, p);
  const pValue = typeof v.pValue === 'number' ? v.pValue : null;
  if (typeof v.type !== 'string' || !textCI || !imageCI || Number.isNaN(n + textAcc + imageAcc)) return null;
  return { type: v.type, n, textAcc, textCI, imageAcc, imageCI, pValue };
}

function recallGap(d: Record<string, unknown>, path: string, p: Problems): RecallGapData | null {
  const rowsIn = field(d, 'rows');
  if (!Array.isArray(rowsIn)) {
    p.add(`${path}.rows`, `expected a list of rows (one per entity type), got ${describe(rowsIn)}`);
    return null;
  }
  const rows: RecallGapRow[] = [];
  rowsIn.forEach((r, i) => {
    const row = recallRow(r, `${path}.rows[${i}]`, p);
    if (row) rows.push(row);
  });
  const o = field(d, 'overall');
  const overall = o === undefined || o === null ? null : recallRow(o, `${path}.overall`, p);
  return { rows, overall, model: optionalString(d, 'model', path, p), matchRule: optionalString(d, 'matchRule', path, p) };
}

function recoveryCurve(d: Record<string, unknown>, path: string, p: Problems): RecoveryCurveData | null {
  const layers = requiredAxis(d, 'layers', path, p);
  if (!layers) return null;
  const patched = requiredNumbers(d, 'patched', path, p, layers.length);
  if (patched) fraction(patched, `${path}.patched`, p);
  const baselines = ['imageAcc', 'textAcc', 'cotAcc'].map((k) => optionalNumber(d, k, path, p));
  fraction(baselines.filter((x): x is number => x !== null), `${path}.[imageAcc, textAcc, cotAcc]`, p);
  if (!patched) return null;
  const [imageAcc, textAcc, cotAcc] = baselines;
  return { layers, patched, imageAcc, textAcc, cotAcc, position: optionalString(d, 'position', path, p) };
}

const VALIDATORS: { [K in ViewKind]: (d: Record<string, unknown>, path: string, p: Problems) => ViewDataMap[K] | null } = {
  'layer-switch': layerSwitch,
  'freeze-curve': freezeCurve,
  'knockout-map': knockoutMap,
  'probe-accuracy': probeAccuracy,
  'logit-lens': logitLens,
  'attribution-map': attributionMap,
  'recall-gap': recallGap,
  'recovery-curve': recoveryCurve,
};

function progressField(v: unknown, p: Problems): Progress | null {
  if (v === undefined || v === null) return null;
  if (!isRecord(v) || typeof v.done !== 'number' || typeof v.total !== 'number' || !(v.total >= 0) || !(v.done >= 0)) {
    p.add('progress', `expected {done, total} (non-negative numbers) or null, got ${describe(v)}`);
    return null;
  }
  return { done: Math.min(v.done, v.total), total: v.total };
}

/**
 * Check a widget state and convert its arrays to plain numbers. Never throws: problems come back as
 * readable lines ("data.layers: is missing ...") for the view to show.
 */
export function validateViewState(raw: unknown): ValidationResult {
  const p = new Problems();
  if (!isRecord(raw)) {
    return { ok: false, view: null, title: '', progress: null, error: null, problems: [`state: expected an object, got ${describe(raw)}`], empty: false };
  }
  const title = typeof raw.title === 'string' ? raw.title : '';
  if (raw.title !== undefined && raw.title !== null && typeof raw.title !== 'string') p.add('title', `expected a string, got ${describe(raw.title)}`);
  const error = typeof raw.error === 'string' && raw.error !== '' ? raw.error : null;
  const progress = progressField(raw.progress, p);
  const view = raw.view;
  const fail = (empty = false): ValidationResult => ({ ok: false, view: typeof view === 'string' ? view : null, title, progress, error, problems: p.list, empty });
  if (!isViewKind(view)) {
    p.add('view', `${describe(view)} is not a view kind; use one of ${VIEW_KINDS.join(', ')}`);
    return fail();
  }
  const data = raw.data;
  const empty = data === undefined || data === null || (isRecord(data) && Object.keys(data).length === 0);
  if (empty && (progress !== null || error !== null)) return fail(true);
  if (!isRecord(data)) {
    p.add('data', `expected an object with the ${view} fields, got ${describe(data)}`);
    return fail();
  }
  const normalised = validateData(view, data, p);
  const compare = comparedData(view, raw.compare, p);
  let label: string | null = null;
  if (raw.label !== undefined && raw.label !== null) {
    if (typeof raw.label === 'string') label = raw.label;
    else p.add('label', `expected the name of the model behind data (a string) or null, got ${describe(raw.label)}`);
  }
  if (compare.length > 0 && label === null) p.add('label', 'a comparison needs the name of the model behind data (label), as each compared entry has one');
  if (!normalised || p.list.length > 0) return fail();
  return { ok: true, state: { view, title, data: normalised, progress, error, label, compare } as AnyViewState };
}

/** `compare`: other models' data of the same view kind, each `{label, data}` and validated like `data`. */
function comparedData<K extends ViewKind>(view: K, v: unknown, p: Problems): { label: string; data: ViewDataMap[K] }[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    p.add('compare', `expected a list of {label, data} (other models' ${view} data), got ${describe(v)}`);
    return [];
  }
  if (v.length + 1 > MAX_COMPARED) p.add('compare', `${v.length + 1} models on one figure; at most ${MAX_COMPARED} stay readable`);
  const out: { label: string; data: ViewDataMap[K] }[] = [];
  v.forEach((entry, i) => {
    const at = `compare[${i}]`;
    if (!isRecord(entry) || typeof entry.label !== 'string' || entry.label === '' || !isRecord(entry.data)) {
      p.add(at, `expected {label: the model's name, data: its ${view} fields}, got ${describe(entry)}`);
      return;
    }
    const d = validateData(view, entry.data, p, `${at}.data`);
    if (d) out.push({ label: entry.label, data: d });
  });
  return out;
}

function validateData<K extends ViewKind>(view: K, data: Record<string, unknown>, p: Problems, path = 'data'): ViewDataMap[K] | null {
  return (VALIDATORS[view] as (d: Record<string, unknown>, path: string, p: Problems) => ViewDataMap[K] | null)(data, path, p);
}
