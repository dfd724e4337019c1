// Statistics for the recall-gap experiment: per-entity then per-type accuracy, the paired Wilcoxon
// signed-rank test on per-entity accuracies (text vs image), and 95% confidence intervals for means.

import { mulberry32 } from './random';

// ---------------------------------------------------------------------------------------------------
// Accuracy aggregation (experiments.md: mean correct per entity, then mean over entities).

/** One scored answer. `entity` is the pairing key (e.g. s_uri); `type` enables the per-type split. */
export interface AnswerRecord {
  entity: string;
  type?: string;
  correct: boolean | number;
}

export interface EntityAccuracy {
  entity: string;
  type?: string;
  mean: number;
  nAnswers: number;
}

export interface AccuracyGroup {
  /** Mean over entities of the per-entity mean. */
  mean: number;
  nEntities: number;
  nAnswers: number;
}

export interface AccuracySummary extends AccuracyGroup {
  byType: Record<string, AccuracyGroup>;
  perEntity: EntityAccuracy[];
}

/** Per-entity mean correctness, in first-seen order. */
export function entityAccuracies(records: readonly AnswerRecord[]): EntityAccuracy[] {
  const acc = new Map<string, { type?: string; sum: number; n: number }>();
  for (const r of records) {
    const slot = acc.get(r.entity) ?? { type: r.type, sum: 0, n: 0 };
    if (slot.type !== undefined && r.type !== undefined && slot.type !== r.type) {
      throw new RangeError(`entityAccuracies: entity '${r.entity}' has two types ('${slot.type}', '${r.type}').`);
    }
    slot.type ??= r.type;
    slot.sum += Number(r.correct);
    slot.n += 1;
    acc.set(r.entity, slot);
  }
  return [...acc].map(([entity, s]) => ({
    entity,
    ...(s.type !== undefined ? { type: s.type } : {}),
    mean: s.sum / s.n,
    nAnswers: s.n,
  }));
}

/** Overall and per-type accuracy, each the mean over entities of the per-entity accuracy. */
export function summarizeAccuracy(records: readonly AnswerRecord[]): AccuracySummary {
  const perEntity = entityAccuracies(records);
  const group = (list: EntityAccuracy[]): AccuracyGroup => ({
    mean: list.length ? list.reduce((s, e) => s + e.mean, 0) / list.length : NaN,
    nEntities: list.length,
    nAnswers: list.reduce((s, e) => s + e.nAnswers, 0),
  });
  const byType: Record<string, AccuracyGroup> = {};
  for (const t of new Set(perEntity.flatMap((e) => (e.type === undefined ? [] : [e.type])))) {
    byType[t] = group(perEntity.filter((e) => e.type === t));
  }
  return { ...group(perEntity), byType, perEntity };
}

export interface ConditionComparison {
  /** Entities scored in both conditions (only these enter the comparison). */
  entities: string[];
  text: AccuracyGroup;
  image: AccuracyGroup;
  /** text − image, mean over entities, with a CI over the per-entity differences. */
  drop: ConfidenceInterval;
  wilcoxon: WilcoxonResult;
  byType: Record<string, { text: AccuracyGroup; image: AccuracyGroup; drop: ConfidenceInterval; wilcoxon: WilcoxonResult }>;
}

/**
 * Text vs image accuracy on the same entity set, the drop with its CI, and the paired Wilcoxon test on
 * per-entity accuracies, overall and per type.
 */
export function compareConditions(
  text: readonly AnswerRecord[],
  image: readonly AnswerRecord[],
  opts: { ci?: CIOptions; wilcoxon?: WilcoxonOptions } = {},
): ConditionComparison {
  const t = new Map(entityAccuracies(text).map((e) => [e.entity, e]));
  const im = new Map(entityAccuracies(image).map((e) => [e.entity, e]));
  const paired = [...t.keys()].filter((k) => im.has(k));
  const compare = (keys: string[]) => {
    const tx = keys.map((k) => t.get(k)!);
    const ix = keys.map((k) => im.get(k)!);
    const group = (l: EntityAccuracy[]): AccuracyGroup => ({
      mean: l.length ? l.reduce((s, e) => s + e.mean, 0) / l.length : NaN,
      nEntities: l.length,
      nAnswers: l.reduce((s, e) => s + e.nAnswers, 0),
    });
    const diffs = keys.map((_, i) => tx[i].mean - ix[i].mean);
    return {
      text: group(tx),
      image: group(ix),
      drop: meanCI(diffs, opts.ci),
      wilcoxon: wilcoxonSignedRank(
        tx.map((e) => e.mean),
        ix.map((e) => e.mean),
        opts.wilcoxon,
      ),
    };
  };
  const byType: ConditionComparison['byType'] = {};
  const types = new Set(paired.flatMap((k) => (t.get(k)!.type === undefined ? [] : [t.get(k)!.type!])));
  for (const type of types) byType[type] = compare(paired.filter((k) => t.get(k)!.type === type));
  return { entities: paired, ...compare(paired), byType };
}

// ---------------------------------------------------------------------------------------------------
// Wilcoxon signed-rank test.

export interface WilcoxonOptions {
  /**
   * scipy.stats.wilcoxon's `method` (scipy/stats/_wilcoxon.py, `_wilcoxon_iv` and `_wilcoxon_nd`). 'auto'
   * (default): the normal approximation when more than 50 pairs (zeros included), else the exact null
   * distribution when there are no ties and no zeros, else (n ≤ 13) the exact permutation distribution
   * of sign flips, else the normal approximation.
   */
  method?: 'auto' | 'exact' | 'approx' | 'permutation';
  /** Continuity correction in the normal approximation (default false, as scipy.stats.wilcoxon). */
  correction?: boolean;
  /** Largest number of pairs for the exact distribution under 'auto' (default 50, as scipy). */
  exactMaxN?: number;
}

/** How a p-value was computed, for summaries (`summary.protocol.wilcoxon`). */
export const WILCOXON_DEFAULTS = { method: 'auto', correction: false, zeroMethod: 'wilcox', exactMaxN: 50, alternative: 'two-sided', follows: 'scipy.stats.wilcoxon defaults' } as const;

export interface WilcoxonResult {
  /** min(W+, W−), as scipy reports for the two-sided test. */
  statistic: number;
  wPlus: number;
  wMinus: number;
  /** Non-zero differences used. */
  n: number;
  /** Zero differences dropped (Wilcoxon's original zero handling, scipy zero_method='wilcox'). */
  nZero: number;
  ties: boolean;
  method: 'exact' | 'approx' | 'permutation';
  correction: boolean;
  /** Standard normal score, for the approximation only. */
  z?: number;
  /** Two-sided p-value; NaN when every difference is zero (as scipy). */
  pValue: number;
}

/**
 * Paired two-sided Wilcoxon signed-rank test on d = x − y (or on x alone when y is omitted), with
 * scipy.stats.wilcoxon's defaults (zero_method 'wilcox', correction False, method 'auto'; see
 * WilcoxonOptions). Zero differences are dropped before ranking; tied |d| get average ranks. The normal
 * approximation uses the tie-corrected variance n(n+1)(2n+1)/24 − Σ(t³−t)/48. Differences within 1e-12
 * of 0 count as zero and |d| equal to 12 significant digits as tied, so per-entity means such as
 * 2/3 − 1 and 1/3 − 2/3 are one tie (scipy compares floats exactly).
 */
export function wilcoxonSignedRank(x: readonly number[], y?: readonly number[], opts: WilcoxonOptions = {}): WilcoxonResult {
  if (y && y.length !== x.length) {
    throw new RangeError(`wilcoxonSignedRank: x and y must be paired (lengths ${x.length} and ${y.length}).`);
  }
  const correction = opts.correction ?? WILCOXON_DEFAULTS.correction;
  const exactMaxN = opts.exactMaxN ?? WILCOXON_DEFAULTS.exactMaxN;
  const all = x.map((v, i) => v - (y ? y[i] : 0));
  if (all.some((d) => !Number.isFinite(d))) throw new RangeError('wilcoxonSignedRank: differences must be finite numbers.');
  const d = all.filter((v) => Math.abs(v) > 1e-12);
  const n = d.length;
  const nZero = all.length - n;
  const abs = d.map((v) => Number(Math.abs(v).toPrecision(12)));
  const { ranks, tieCounts } = averageRanks(abs);
  const ties = tieCounts.some((t) => t > 1);
  let wPlus = 0;
  let wMinus = 0;
  d.forEach((v, i) => (v > 0 ? (wPlus += ranks[i]) : (wMinus += ranks[i])));
  const statistic = Math.min(wPlus, wMinus);
  let method = opts.method ?? 'auto';
  // scipy decides on the pair count before dropping zeros (d.shape[-1] in _wilcoxon_iv / _wilcoxon_nd).
  if (method === 'auto') method = all.length > exactMaxN ? 'approx' : !ties && nZero === 0 ? 'exact' : all.length <= 13 ? 'permutation' : 'approx';
  const base = { statistic, wPlus, wMinus, n, nZero, ties, correction, method };
  if (n === 0) return { ...base, pValue: NaN };
  if (method === 'exact') {
    // With ties the statistic can be a half-integer: scipy rounds up for the cdf and down for the sf (gh-19872).
    const p = 2 * Math.min(1 - exactSignedRankCdf(n, Math.floor(wPlus) - 1), exactSignedRankCdf(n, Math.ceil(wPlus)));
    return { ...base, pValue: Math.min(1, p) };
  }
  if (method === 'permutation') return { ...base, pValue: signFlipPValue(ranks, d, wPlus) };
  const mean = (n * (n + 1)) / 4;
  const sd = Math.sqrt((n * (n + 1) * (2 * n + 1) - tieCounts.reduce((s, t) => s + (t ** 3 - t), 0) / 2) / 24);
  let z = (wPlus - mean) / sd;
  if (correction) z -= (Math.sign(z) * 0.5) / sd;
  return { ...base, z: -Math.abs(z), pValue: Math.min(1, 2 * normalSf(Math.abs(z))) };
}

/**
 * Two-sided p-value of W+ over all 2^n sign assignments of the ranks (scipy's permutation_test with
 * permutation_type 'samples', exact when 2^n ≤ its 9999 resamples): 2·min(P(W+ ≤ w), P(W+ ≥ w)), at most 1.
 */
function signFlipPValue(ranks: readonly number[], d: readonly number[], wPlus: number): number {
  const n = ranks.length;
  if (n > 20) throw new RangeError(`wilcoxonSignedRank: the permutation method enumerates 2^n sign flips; n = ${n} is too many (use "approx")`);
  const eps = 1e-9 * Math.max(1, Math.abs(wPlus));
  let le = 0;
  let ge = 0;
  const total = 2 ** n;
  for (let mask = 0; mask < total; mask++) {
    let w = 0;
    for (let i = 0; i < n; i++) if (mask & (1 << i)) w += ranks[i];
    if (w <= wPlus + eps) le++;
    if (w >= wPlus - eps) ge++;
  }
  void d;
  return Math.min(1, (2 * Math.min(le, ge)) / total);
}

/** P(W ≤ w) under the null for n untied ranks, by counting subsets of {1..n} with each rank sum. */
function exactSignedRankCdf(n: number, w: number): number {
  const max = (n * (n + 1)) / 2;
  const counts = new Float64Array(max + 1);
  counts[0] = 1;
  for (let k = 1; k <= n; k++) {
    for (let s = max; s >= k; s--) counts[s] += counts[s - k];
  }
  let below = 0;
  for (let s = 0; s <= Math.floor(w); s++) below += counts[s];
  return below / 2 ** n;
}

/** 1-based average ranks of values (ties share the mean rank) and the size of each tie group. */
function averageRanks(values: readonly number[]): { ranks: number[]; tieCounts: number[] } {
  const order = values.map((_, i) => i).sort((a, b) => values[a] - values[b]);
  const ranks = new Array<number>(values.length);
  const tieCounts: number[] = [];
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && values[order[j + 1]] === values[order[i]]) j++;
    const rank = (i + j + 2) / 2;
    for (let k = i; k <= j; k++) ranks[order[k]] = rank;
    tieCounts.push(j - i + 1);
    i = j + 1;
  }
  return { ranks, tieCounts };
}

// ---------------------------------------------------------------------------------------------------
// Confidence intervals for a mean.

export interface CIOptions {
  /** 'normal' (default): mean ± z·s/√n; 'bootstrap': percentile interval of resampled means. */
  method?: 'normal' | 'bootstrap';
  level?: number;
  /** Bootstrap resamples (default 2000). */
  resamples?: number;
  /** Bootstrap seed (default 0). */
  seed?: number;
}

export interface ConfidenceInterval {
  mean: number;
  lo: number;
  hi: number;
  n: number;
  level: number;
  method: 'normal' | 'bootstrap' | 'wilson';
}

/**
 * Wilson score interval of an accuracy: the mean of per-unit scores in [0, 1] over n units (entities). The normal
 * interval of the mean leaves [0, 1] on few units and shrinks to a point when every unit scores the same: six
 * entities all answered gave 100 % [100 %, 100 %], five of six 83 % [51 %, 116 %]. Wilson's stays inside and
 * gives those 61–100 % and 44–97 % (Brown, Cai & DasGupta 2001 recommend it over the normal interval for
 * small n). For per-entity means of several answers it is conservative: scores in [0, 1] with mean p vary
 * at most p(1 − p), the binomial variance it assumes. NaN bounds without units.
 */
export function proportionCI(values: readonly number[], level = 0.95): ConfidenceInterval {
  if (!(level > 0 && level < 1)) throw new RangeError(`proportionCI: level must be in (0, 1), got ${level}.`);
  const n = values.length;
  const p = n ? values.reduce((s, v) => s + v, 0) / n : NaN;
  const out = { mean: p, n, level, method: 'wilson' as const };
  if (n < 1) return { ...out, lo: NaN, hi: NaN };
  const z = normalQuantile(1 - (1 - level) / 2);
  const z2n = (z * z) / n;
  const centre = (p + z2n / 2) / (1 + z2n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2n / (4 * n))) / (1 + z2n);
  return { ...out, lo: Math.max(0, centre - half), hi: Math.min(1, centre + half) };
}

/** Confidence interval for the mean of values (NaN bounds when n < 2). */
export function meanCI(values: readonly number[], opts: CIOptions = {}): ConfidenceInterval {
  const method = opts.method ?? 'normal';
  const level = opts.level ?? 0.95;
  if (!(level > 0 && level < 1)) throw new RangeError(`meanCI: level must be in (0, 1), got ${level}.`);
  const n = values.length;
  const mean = n ? values.reduce((s, v) => s + v, 0) / n : NaN;
  const out = { mean, n, level, method };
  if (n < 2) return { ...out, lo: NaN, hi: NaN };
  if (method === 'normal') {
    const sd = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1));
    const half = normalQuantile(1 - (1 - level) / 2) * (sd / Math.sqrt(n));
    return { ...out, lo: mean - half, hi: mean + half };
  }
  const resamples = opts.resamples ?? 2000;
  const rng = mulberry32(opts.seed ?? 0);
  const means = new Float64Array(resamples);
  for (let b = 0; b < resamples; b++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += values[Math.floor(rng() * n)];
    means[b] = s / n;
  }
  means.sort();
  return { ...out, lo: quantileSorted(means, (1 - level) / 2), hi: quantileSorted(means, 1 - (1 - level) / 2) };
}

/**
 * Cluster-bootstrap draws as weights over n units (entities, pairs): each of `resamples` draws picks n units with
 * replacement and gives each the number of times it was picked, so a weighted mean over the units is that draw's
 * mean, with no copy of the data (one array, refilled per draw: read it before the next). Deterministic for a seed.
 */
export function* bootstrapWeights(n: number, resamples: number, seed: number): Generator<Float64Array> {
  const rng = mulberry32(seed);
  const weight = new Float64Array(n);
  for (let b = 0; b < resamples; b++) {
    weight.fill(0);
    for (let k = 0; k < n; k++) weight[Math.floor(rng() * n)]++;
    yield weight;
  }
}

/** Σ weight·value / Σ weight over the units with a weight and a value (NaN: a unit without one); NaN if none. */
export function weightedMean(values: ArrayLike<number>, weight: ArrayLike<number>): number {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (weight[i] > 0 && !Number.isNaN(v)) {
      sum += weight[i] * v;
      n += weight[i];
    }
  }
  return n > 0 ? sum / n : NaN;
}

/** Linear-interpolation quantile of sorted data (numpy's default). */
function quantileSorted(sorted: Float64Array, q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

// ---------------------------------------------------------------------------------------------------
// Standard normal distribution.

/** erfc(x) to about 1e-14 relative: Taylor series of erf below 2, Laplace continued fraction above. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) {
    let term = x;
    let sum = x;
    for (let k = 1; k < 100; k++) {
      term *= (-x * x) / k;
      const add = term / (2 * k + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (x > 27) return 0;
  let f = x;
  for (let k = 80; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/** P(Z > z) for a standard normal Z. */
export function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

/** P(Z ≤ z). */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/** Inverse of normalCdf: Acklam's rational approximation refined by one Halley step. */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) {
    if (p === 0) return -Infinity;
    if (p === 1) return Infinity;
    return NaN;
  }
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lowTail = 0.02425;
  let x: number;
  if (p < lowTail) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - lowTail) {
    const q = p - 0.5;
    const r = q * q;
    x =
      ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
      (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  const e = normalCdf(x) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}
