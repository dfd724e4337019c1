// The resolution layer of a probe curve ("Too Late to Recall" reads hop 1's timing as the first layer where a
// probe decodes the entity), in one place for the experiment, its views and the widgets: a pure wire module
// (.dependency-cruiser.cjs WIRE), as switch-layer.ts is. How far the layer can be trusted: resolution-ci.ts.

/** What the threshold is a share of: held-out accuracy itself, or the curve's own best accuracy. */
export const THRESHOLD_OF = ['accuracy', 'peak'] as const;
export type ThresholdOf = (typeof THRESHOLD_OF)[number];

export interface ResolutionRule {
  threshold: number;
  thresholdOf: ThresholdOf;
}

/** First index whose value reaches the rule's threshold (null: none, or an empty / all-NaN curve). */
export function resolutionIndex(curve: readonly number[], rule: ResolutionRule): number | null {
  const finite = curve.filter(Number.isFinite);
  if (finite.length === 0) return null;
  const best = Math.max(...finite);
  // A curve that never leaves 0 has no peak to be a share of.
  if (rule.thresholdOf === 'peak' && !(best > 0)) return null;
  const bar = rule.thresholdOf === 'peak' ? rule.threshold * best : rule.threshold;
  const i = curve.findIndex((v) => v >= bar);
  return i < 0 ? null : i;
}

/** The layer (of `layers`, one per curve point) where the curve resolves; null without a curve or a threshold. */
export function resolutionLayer(layers: readonly number[], curve: readonly number[] | null | undefined, rule: { threshold: number | null; thresholdOf?: ThresholdOf }): number | null {
  if (!curve || rule.threshold === null) return null;
  const i = resolutionIndex(curve, { threshold: rule.threshold, thresholdOf: rule.thresholdOf ?? 'accuracy' });
  return i === null ? null : layers[i];
}

/** An interval as a label: "1–5", "7" when one layer, "1–never" / "never" when draws never resolve; `unit` prefixes each layer ("L"). */
export function formatInterval(ci: Interval, unit = ''): string {
  const at = (v: number | null) => (v === null ? 'never' : `${unit}${v}`);
  return ci.low === ci.high ? at(ci.low) : `${at(ci.low)}–${at(ci.high)}`;
}

/**
 * A 95 % percentile interval of a resolution layer (or of a lag, in layers) over bootstrap draws; null bounds mean
 * "never resolves" (a draw whose curve never reaches the threshold sorts after every layer). `agree` is the share
 * of draws that give the point estimate itself.
 */
export interface Interval {
  low: number | null;
  high: number | null;
  agree: number;
}
