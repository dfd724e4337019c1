// Circuit analysis ("Too Late to Recall"): where does factual recall sit? Attribution patching over the
// attention and MLP outputs of every layer, summed over position groups (the entity's last token and span
// — the subject in a text prompt, the image in an image prompt — the query, the last position), so the
// backbone's text run and the VLM's image run can be compared site by site: top-k overlap and, per layer,
// the rank correlation of the site scores.
import type { PromptSpans } from '../io/prompt';
import type { Model, ModelInputs } from '../models/model';
import { attributionPatching, type Metric } from './attribution-patching';

export const COMPONENTS = ['attn_out', 'mlp_out'] as const;
export type Component = (typeof COMPONENTS)[number];
export const GROUPS = ['entity-last', 'entity', 'query', 'last'] as const;
export type Group = (typeof GROUPS)[number];

/**
 * Positions of each group. Text prompts: the subject's last token and span; image prompts: the last image
 * token and the image span (the entity is shown, not named). Null when a prompt has neither.
 */
export function groupPositions(spans: PromptSpans): Record<Group, number[]> | null {
  const range = (s: number, e: number) => Array.from({ length: Math.max(0, e - s) }, (_, i) => s + i);
  let entity: number[];
  if (spans.images.length) {
    const im = spans.images[spans.images.length - 1];
    entity = range(spans.images[0].start, im.start + im.length);
  } else if (spans.subject) entity = range(spans.subject.start, spans.subject.end);
  else return null;
  return {
    'entity-last': [entity[entity.length - 1]],
    entity,
    query: spans.query ? range(spans.query.start, spans.query.end) : [],
    last: [spans.last],
  };
}

/** One site: a component of one layer over one position group. */
export interface SiteScore {
  component: Component;
  layer: number;
  group: Group;
  /** Σ over the group's positions of the attribution score (the linear estimate of patching them all). */
  score: number;
}

/** Attribution scores of every (component, layer, group) for one clean/corrupt pair of equal length. */
export function siteScores(model: Model, clean: ModelInputs, corrupt: ModelInputs, spans: PromptSpans, metric: Metric, opts: { igSteps?: number } = {}): SiteScore[] {
  const groups = groupPositions(spans);
  if (!groups) return [];
  const L = model.numLayers;
  const point = (l: number, c: Component) => `lm.blocks.${l}.${c}`;
  const points = Array.from({ length: L }, (_, l) => COMPONENTS.map((c) => point(l, c))).flat();
  const attr = attributionPatching(model, clean, corrupt, metric, { igSteps: opts.igSteps, points });
  const out: SiteScore[] = [];
  for (let l = 0; l < L; l++)
    for (const c of COMPONENTS) {
      const s = attr.scoresAt.get(point(l, c))!;
      for (const g of GROUPS) out.push({ component: c, layer: l, group: g, score: groups[g].reduce((a, p) => a + s[p], 0) });
    }
  return out;
}

const siteKey = (s: Pick<SiteScore, 'component' | 'layer' | 'group'>) => `${s.component}/${s.layer}/${s.group}`;

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

/** Spearman rank correlation (average ranks for ties); NaN with fewer than 2 values or no variance. */
export function spearman(x: readonly number[], y: readonly number[]): number {
  const rank = (v: readonly number[]) => {
    const order = v.map((_, i) => i).sort((a, b) => v[a] - v[b]);
    const r = new Array<number>(v.length);
    for (let i = 0; i < order.length; ) {
      let j = i;
      while (j + 1 < order.length && v[order[j + 1]] === v[order[i]]) j++;
      for (let k = i; k <= j; k++) r[order[k]] = (i + j) / 2 + 1;
      i = j + 1;
    }
    return r;
  };
  if (x.length !== y.length || x.length < 2) return NaN;
  const rx = rank(x);
  const ry = rank(y);
  const m = (x.length + 1) / 2;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    sxy += (rx[i] - m) * (ry[i] - m);
    sxx += (rx[i] - m) ** 2;
    syy += (ry[i] - m) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : NaN;
}

/**
 * Where recall sits in run A vs run B (e.g. the backbone on text vs the VLM on images): the share of A's
 * top-k sites by |score| that are in B's top k, and per layer the Spearman correlation of the site scores
 * (components × groups) of the two runs.
 */
export function compareSites(a: readonly SiteScore[], b: readonly SiteScore[], k: number): { k: number; overlap: number; shared: string[]; perLayer: { layer: number; spearman: number }[] } {
  const bMap = new Map(b.map((s) => [siteKey(s), s.score]));
  const common = a.filter((s) => bMap.has(siteKey(s)));
  const top = (xs: readonly { key: string; v: number }[]) => new Set(xs.slice().sort((p, q) => Math.abs(q.v) - Math.abs(p.v)).slice(0, k).map((x) => x.key));
  const ta = top(common.map((s) => ({ key: siteKey(s), v: s.score })));
  const tb = top(common.map((s) => ({ key: siteKey(s), v: bMap.get(siteKey(s))! })));
  const shared = [...ta].filter((x) => tb.has(x));
  const layers = [...new Set(common.map((s) => s.layer))].sort((p, q) => p - q);
  return {
    k,
    overlap: ta.size ? shared.length / ta.size : NaN,
    shared,
    perLayer: layers.map((layer) => {
      const at = common.filter((s) => s.layer === layer);
      return { layer, spearman: spearman(at.map((s) => s.score), at.map((s) => bMap.get(siteKey(s))!)) };
    }),
  };
}
