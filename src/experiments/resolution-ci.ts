// How far a resolution layer can be trusted. On a small sample a flat curve makes the first layer over the
// threshold a coin toss between nearly equal values (the 8-layer teaching pair's transfer curves peaked at
// 0.14–0.18: data/teaching/README.md, session 27). A cluster bootstrap over the held-out entities gives each modality's
// layer, and its lag behind another's, a 95 % interval, so a figure says whether "later" is more than noise.
// Entities, not prompts, are resampled: one entity's prompts share its features and are not independent draws
// (the cluster bootstrap of Davison & Hinkley 1997, §3.8).
import { bootstrapWeights } from '../data/stats';
import { resolutionIndex, type Interval, type ResolutionRule } from './resolution';

/** Per-example hits of one modality's probe: hits[layer][example] = 1 when the held-out example is decoded right. */
export interface Hits {
  /** The entity of each example (the resampling unit). */
  entity: string[];
  hits: Uint8Array[];
}

export interface ResolutionBootstrap {
  resamples: number;
  /** Per modality, the resolution layer's interval. */
  layer: Record<string, Interval>;
  /** Per modality other than the reference, the interval of (its layer − the reference's), from the same draws. */
  lag: Record<string, Interval>;
  reference: string | null;
}

/** Curve of mean hits per layer over the examples of the drawn entities (each counted as often as it was drawn). */
function curveOf(hits: readonly Uint8Array[], entityOf: Int32Array, weight: Float64Array): number[] {
  return hits.map((row) => {
    let n = 0;
    let ok = 0;
    for (let i = 0; i < row.length; i++) {
      const w = weight[entityOf[i]];
      n += w;
      ok += w * row[i];
    }
    return n > 0 ? ok / n : NaN;
  });
}

/**
 * The 95 % percentile interval of a statistic over bootstrap draws (null sorts after every number: a layer that
 * never resolves), and the share of draws that give the point estimate itself.
 */
export function drawInterval(values: readonly (number | null)[], point: number | null): Interval {
  const key = (v: number | null) => (v === null ? Infinity : v);
  const sorted = values.map(key).sort((a, b) => a - b);
  const at = (q: number) => {
    const v = sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
    return Number.isFinite(v) ? v : null;
  };
  return { low: at(0.025), high: at(0.975), agree: values.filter((v) => v === point).length / values.length };
}

/**
 * Cluster bootstrap of the resolution layer: each draw resamples the entities (with replacement, the same draw for
 * every modality, so lags are paired), recomputes each modality's curve from its examples' hits and applies the
 * rule. `layers` maps a curve index to its layer. Deterministic for a seed.
 */
export function bootstrapResolution(
  byModality: Record<string, Hits>,
  layers: readonly number[],
  rule: ResolutionRule,
  resamples: number,
  seed: number,
  reference: string | null = null,
): ResolutionBootstrap | null {
  const names = Object.keys(byModality).filter((m) => byModality[m].entity.length > 0);
  if (resamples <= 0 || names.length === 0) return null;
  const entities = [...new Set(names.flatMap((m) => byModality[m].entity))].sort();
  const layerOf = (curve: number[]) => {
    const i = resolutionIndex(curve, rule);
    return i === null ? null : layers[i];
  };
  // Entities as indices once: a draw is a weight per entity, and a curve a weighted mean (no lookups by name).
  const index = new Map(entities.map((e, i) => [e, i]));
  const entityOf = Object.fromEntries(names.map((m) => [m, Int32Array.from(byModality[m].entity, (e) => index.get(e)!)]));
  const curve = (m: string, weight: Float64Array) => curveOf(byModality[m].hits, entityOf[m], weight);
  const point = Object.fromEntries(names.map((m) => [m, layerOf(curve(m, new Float64Array(entities.length).fill(1)))]));
  const draws: Record<string, (number | null)[]> = Object.fromEntries(names.map((m) => [m, []]));
  for (const weight of bootstrapWeights(entities.length, resamples, seed)) for (const m of names) draws[m].push(layerOf(curve(m, weight)));
  const ref = reference !== null && names.includes(reference) ? reference : null;
  const lagOf = (a: number | null, b: number | null) => (a === null || b === null ? null : a - b);
  return {
    resamples,
    layer: Object.fromEntries(names.map((m) => [m, drawInterval(draws[m], point[m])])),
    lag: ref
      ? Object.fromEntries(
          names
            .filter((m) => m !== ref)
            .map((m) => [m, drawInterval(draws[m].map((v, i) => lagOf(v, draws[ref][i])), lagOf(point[m], point[ref]))]),
        )
      : {},
    reference: ref,
  };
}
