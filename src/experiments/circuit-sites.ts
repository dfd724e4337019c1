// The circuit experiment's sites and their means over pairs: pure, no tfjs, so the experiment (circuit.ts) and
// its view (views.ts, loaded by the kernel before any model code) share one definition.
import type { Row } from './checkpoint';

export const COMPONENTS = ['attn_out', 'mlp_out'] as const;
export type Component = (typeof COMPONENTS)[number];
export const GROUPS = ['entity-last', 'entity', 'query', 'last'] as const;
export type Group = (typeof GROUPS)[number];

/** One site: a component of one layer over one position group. */
export interface SiteScore {
  component: Component;
  layer: number;
  group: Group;
  /** Σ over the group's positions of the attribution score (the linear estimate of patching them all). */
  score: number;
}

export const siteKey = (s: Pick<SiteScore, 'component' | 'layer' | 'group'>) => `${s.component}/${s.layer}/${s.group}`;

/** Mean score per site over pairs (sites missing from a pair are not averaged in). */
export function meanSites(runs: readonly SiteScore[][]): SiteScore[] {
  const acc = new Map<string, { s: SiteScore; sum: number; n: number }>();
  for (const run of runs)
    for (const s of run) {
      const k = siteKey(s);
      const a = acc.get(k) ?? { s, sum: 0, n: 0 };
      a.sum += s.score;
      a.n++;
      acc.set(k, a);
    }
  return [...acc.values()].map(({ s, sum, n }) => ({ ...s, score: sum / n }));
}

/** The runs compared: the backbone on the text question, the VLM on it, and the VLM on the image question. */
export const CIRCUIT_RUNS = ['backbone-text', 'vlm-text', 'vlm-image'] as const;
export type CircuitRun = (typeof CIRCUIT_RUNS)[number];

/** A run's sites in a model of `numLayers` layers: a `topK` of at least this re-measures every one exactly. */
export const siteCount = (numLayers: number): number => numLayers * COMPONENTS.length * GROUPS.length;

/**
 * Whether every site of every pair in the rows was re-measured by exact patching (the spec's `topK` at least a
 * run's sites: layers × components × groups). Only then are exact means comparable between sites and runs: a
 * mean over the sites each pair happened to rank highest would be biased. The experiment's `summary.exact` and
 * its figure (which then draws the measured effects, not the estimates) use this one rule.
 */
export const everySiteExact = (rows: readonly Row[]): boolean => rows.length > 0 && rows.every((r) => typeof r.exact === 'number');

/**
 * Mean site scores of one run over the table's pairs; `field` 'reuse' or 'exact' averages that column instead
 * (as `score`), over the pairs that have one.
 */
export function circuitMeans(rows: readonly Row[], run: CircuitRun, field: 'score' | 'reuse' | 'exact' = 'score'): SiteScore[] {
  const byPair = new Map<unknown, SiteScore[]>();
  for (const r of rows) {
    if (r.run !== run || r[field] === null || r[field] === undefined) continue;
    const list = byPair.get(r.pair) ?? [];
    list.push({ component: r.component as Component, layer: Number(r.layer), group: r.group as Group, score: Number(r[field]) });
    byPair.set(r.pair, list);
  }
  return meanSites([...byPair.values()]);
}
