// Circuit analysis ("Too Late to Recall"): where does factual recall sit? Attribution patching over the
// attention and MLP outputs of every layer, summed over position groups (the entity's last token and span
// — the subject in a text prompt, the image in an image prompt — the query, the last position), so the
// backbone's text run and the VLM's image run can be compared site by site: top-k overlap and, per layer,
// the rank correlation of the site scores. Attribution says a site matters, not what it computes: a site
// on the image's path matters whether it recalls the entity's facts or is still resolving the entity (hop
// 1). So each VLM site also gets its reuse: the cosine between what it writes differently for the two
// entities and what the backbone's same site writes for their names. The paper's claim is that degraded
// VLMs "struggle to use the existing factual recall circuit"; reuse measures that use directly.
import * as tf from '@tensorflow/tfjs-core';
import { bootstrapWeights, weightedMean } from '../data/stats';
import { InputError } from '../errors';
import type { PromptSpans } from '../io/prompt';
import type { Model, ModelInputs } from '../models/model';
import { pairedSample, metricFor } from './attribution';
import { attributionPatching, type Metric } from './attribution-patching';
import { backboneSource, resolveBackbone } from './backbone';
import { makeBatch } from './batch';
import type { Row } from './checkpoint';
import { Progress, Warnings, makeTable, mean, type ExperimentContext } from './context';
import { protocolSummary } from './protocol';
import { prepareSource } from './sources/dataset';
import type { Interval } from './resolution';
import { drawInterval } from './resolution-ci';
import { selectRows, type SpecBase } from './spec';
import { scopeQuestions, type EntityRef, type PromptCase, type PromptSource } from './source';
import { CIRCUIT_RUNS, COMPONENTS, GROUPS, circuitMeans, everySiteExact, siteKey, type CircuitRun, type Component, type Group, type SiteScore } from './circuit-sites';


/** The VLM's runs: the ones compared with the backbone's text run (reuse, found, carried). */
const VLM_RUNS = ['vlm-text', 'vlm-image'] as const;
type VlmRun = (typeof VLM_RUNS)[number];

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
  // The query without the entity: a text question names the subject inside it, and a group that holds the
  // entity too would score like the entity and stand for nothing of its own.
  const inEntity = new Set(entity);
  return {
    'entity-last': [entity[entity.length - 1]],
    entity,
    query: spans.query ? range(spans.query.start, spans.query.end).filter((p) => !inEntity.has(p)) : [],
    last: [spans.last],
  };
}


/**
 * Attribution scores of every (component, layer, group) for one clean/corrupt pair of equal length, and what
 * each site writes differently for the two inputs: Σ over the group's positions of (corrupt − clean), [D].
 */
export function siteAttribution(model: Model, clean: ModelInputs, corrupt: ModelInputs, spans: PromptSpans, metric: Metric, opts: { igSteps?: number } = {}): { sites: SiteScore[]; delta(site: SiteScore): Float32Array } {
  const groups = groupPositions(spans);
  if (!groups) return { sites: [], delta: () => new Float32Array(model.dModel) };
  const L = model.numLayers;
  const point = (l: number, c: Component) => `lm.blocks.${l}.${c}`;
  const points = Array.from({ length: L }, (_, l) => COMPONENTS.map((c) => point(l, c))).flat();
  const attr = attributionPatching(model, clean, corrupt, metric, { igSteps: opts.igSteps, points });
  const sites: SiteScore[] = [];
  for (let l = 0; l < L; l++)
    for (const c of COMPONENTS) {
      const s = attr.scoresAt.get(point(l, c))!;
      for (const g of GROUPS) sites.push({ component: c, layer: l, group: g, score: groups[g].reduce((a, p) => a + s[p], 0) });
    }
  return { sites, delta: (s) => attr.deltaAt(point(s.layer, s.component), groups[s.group]) };
}

/** Attribution scores of every (component, layer, group) for one clean/corrupt pair of equal length. */
export function siteScores(model: Model, clean: ModelInputs, corrupt: ModelInputs, spans: PromptSpans, metric: Metric, opts: { igSteps?: number } = {}): SiteScore[] {
  return siteAttribution(model, clean, corrupt, spans, metric, opts).sites;
}

/** Cosine similarity; NaN when either vector is zero or the lengths differ (vectors of different models' widths). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return NaN;
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : NaN;
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

// ------------------------------------------------------------------------------------------------
// The experiment kind: the three runs of the paper's comparison on the same clean/corrupt pairs.


export interface CircuitSpec extends SpecBase {
  kind: 'circuit';
  backbone: string | null;
  backboneTemplate: string;
  metric: 'logit-diff' | 'answer-logit' | 'answer-prob';
  igSteps: number;
  /** Sites per run and pair re-measured by exact patching (the largest |score| first); every site adds `summary.exact`. */
  topK: number;
  /** k of the top-k site overlap between runs. */
  k: number;
  /** Bootstrap draws over the pairs for `summary.exact.recall.ci` (with every site measured); 0: none. */
  bootstrap: number;
}

interface Triple {
  a: EntityRef;
  b: EntityRef;
  relation: string | null;
  cases: Record<CircuitRun, [PromptCase, PromptCase]>;
}

/**
 * Same-type pairs (clean A, corrupt B) asked the same relation, with prompts of equal length in all three
 * runs (attribution and exact patching compare position by position), so every run averages one pair set.
 */
function triples(source: PromptSource, bbSource: PromptSource, backbone: Model, pool: EntityRef[], spec: CircuitSpec): Triple[] {
  const image = (e: EntityRef) => source.questions(e, 'image').filter((q) => !q.cot);
  const textOf = (e: EntityRef, q: PromptCase) => source.questions(e, 'text').find((t) => t.row === q.row && t.relation === q.relation) ?? null;
  const out: Triple[] = [];
  for (const a of pool) {
    for (const qa of image(a)) {
      const ta = textOf(a, qa);
      const ba = bbSource.backbonePrompt(qa, backbone, { template: spec.backboneTemplate });
      if (!ta || !ba) continue;
      let found: Triple | null = null;
      // A partner with another answer first (the contrast the metric measures), any partner otherwise.
      const sameAnswer = (b: EntityRef) => image(b).some((q) => q.relation === qa.relation && String(q.answers?.[0]) === String(qa.answers?.[0]));
      const partners = pool.filter((b) => b !== a && b.type === a.type);
      for (const b of [...partners.filter((x) => !sameAnswer(x)), ...partners.filter(sameAnswer)]) {
        const qb = image(b).find((q) => q.relation === qa.relation && q.inputIds.length === qa.inputIds.length);
        const tb = qb ? textOf(b, qb) : null;
        const bb = qb ? bbSource.backbonePrompt(qb, backbone, { template: spec.backboneTemplate }) : null;
        if (!qb || !tb || !bb || tb.inputIds.length !== ta.inputIds.length || bb.inputIds.length !== ba.inputIds.length) continue;
        found = { a, b, relation: qa.relation ?? null, cases: { 'backbone-text': [ba, bb], 'vlm-text': [ta, tb], 'vlm-image': [qa, qb] } };
        break;
      }
      if (found) {
        out.push(found);
        break;
      }
    }
  }
  return out;
}

function lastLogitsOf(model: Model, inputs: ModelInputs): Float32Array {
  const out = model.forward(inputs, { logits: 'last' });
  try {
    return Float32Array.from(out.logits!.dataSync());
  } finally {
    out.dispose();
  }
}

/** One site to patch exactly: a component's hook and the position group's positions. */
interface PatchSite {
  hook: string;
  positions: readonly number[];
}

/**
 * M(clean with the corrupt run's values of each site's hook at its positions) − M(clean), exact patching of every
 * site, `batchSize` patched runs per forward: row i of a batch of copies of the clean prompt is patched at site i
 * alone (a per-row mask at each hook of the chunk). On the 12-layer teaching model a forward of 8 image prompts
 * costs 2.1 ms a prompt against 11.6 ms for one alone (one thread; data/teaching/README.md, session 34): notebook
 * 8's every-site spec takes 10.3 s instead of 23.9. All copies share the clean prompt's length, as the corrupt run's
 * cached values do (pairs have prompts of equal length), so positions need no padding offset.
 */
export async function exactSites(model: Model, source: PromptSource, clean: PromptCase, corruptCache: Map<string, tf.Tensor>, sites: readonly PatchSite[], metric: Metric, mClean: number, batchSize: number): Promise<number[]> {
  const out: number[] = [];
  for (let start = 0; start < sites.length; start += batchSize) {
    const chunk = sites.slice(start, start + batchSize);
    const batch = await makeBatch(model, source, chunk.map(() => clean));
    try {
      const hooks: Record<string, (v: tf.Tensor) => tf.Tensor> = {};
      for (const hook of new Set(chunk.map((s) => s.hook))) {
        const donor = corruptCache.get(hook)!;
        hooks[hook] = (v) => {
          const [N, T] = v.shape as [number, number];
          const keep = new Float32Array(N * T).fill(1);
          chunk.forEach((s, i) => {
            if (s.hook === hook) for (const p of s.positions) keep[i * T + p] = 0;
          });
          const k = tf.tensor3d(keep, [N, T, 1]);
          return tf.add(tf.mul(v, k), tf.mul(donor, tf.sub(1, k)));
        };
      }
      const res = model.forward(batch.inputs, { logits: 'last', hooks });
      try {
        const logits = res.logits!.dataSync() as Float32Array;
        const V = logits.length / chunk.length;
        for (let i = 0; i < chunk.length; i++) out.push(metric.value(logits.slice(i * V, (i + 1) * V)) - mClean);
      } finally {
        res.dispose();
      }
    } finally {
      batch.dispose();
    }
  }
  return out;
}

/** The summary `circuitExperiment` builds, typed from its code (runExperiment's result is typed by kind from these). */
export type CircuitSummary = Awaited<ReturnType<typeof circuitExperiment>>['summary'];

export async function circuitExperiment(model: Model, source: PromptSource, spec: CircuitSpec, ctx: ExperimentContext = {}) {
  source = scopeQuestions(source, spec.questions);
  const bb = resolveBackbone(model, spec, ctx);
  if (!bb) throw new InputError('circuit: no backbone (give `backbone`, or a VLM folder with backbone/ or hopscope_backbone in its config.json)');
  const progress = new Progress(ctx);
  const warnings = new Warnings();
  warnings.add(bb.warnings);
  const rows: Row[] = [];
  try {
    const bbSource = backboneSource(source, bb.model);
    const entities = pairedSample(source.entities({ types: spec.types }), spec.limit, 'same', spec.seed);
    await prepareSource(source, entities);
    let pairs = triples(source, bbSource, bb.model, entities, spec);
    pairs = selectRows(spec, pairs, 'clean/corrupt pairs');
    if (pairs.length === 0) warnings.add(['circuit: no same-type pair asks one relation with prompts of equal length in all three runs']);
    const models: Record<CircuitRun, { model: Model; source: PromptSource }> = {
      'backbone-text': { model: bb.model, source: bbSource },
      'vlm-text': { model, source },
      'vlm-image': { model, source },
    };
    progress.start('circuit', pairs.length * CIRCUIT_RUNS.length);
    for (const [pi, t] of pairs.entries()) {
      // What each of the backbone's sites writes differently for the pair's two names (its run comes first).
      const bbDelta = new Map<string, Float32Array>();
      for (const run of CIRCUIT_RUNS) {
        ctx.signal?.throwIfAborted();
        const { model: m, source: src } = models[run];
        const [ca, cb] = t.cases[run];
        const A = await makeBatch(m, src, [ca]);
        const B = await makeBatch(m, src, [cb]);
        try {
          const cleanLast = lastLogitsOf(m, A.inputs);
          const metric = metricFor({ metric: spec.metric, tokens: null }, cleanLast, lastLogitsOf(m, B.inputs), (ids) => src.decode(ids));
          const { sites, delta } = siteAttribution(m, A.inputs, B.inputs, ca.spans, metric, { igSteps: spec.igSteps });
          const reuse = new Map<string, number | null>();
          for (const site of sites) {
            const d = delta(site);
            if (run === 'backbone-text') bbDelta.set(siteKey(site), d);
            else {
              // null, not NaN: a site the backbone's run lacks, a zero difference, or another width (no shared basis).
              const r = bbDelta.has(siteKey(site)) ? cosine(d, bbDelta.get(siteKey(site))!) : NaN;
              reuse.set(siteKey(site), Number.isFinite(r) ? r : null);
            }
          }
          const groups = groupPositions(ca.spans)!;
          const top = [...sites].sort((x, y) => Math.abs(y.score) - Math.abs(x.score)).slice(0, spec.topK);
          const exact = new Map<string, number>();
          if (top.length) {
            const hooks = [...new Set(top.map((s) => `lm.blocks.${s.layer}.${s.component}`))];
            const corrupt = m.forward(B.inputs, { cache: hooks, logits: 'last' });
            try {
              const mClean = metric.value(cleanLast);
              const values = await exactSites(m, src, ca, corrupt.cache, top.map((s) => ({ hook: `lm.blocks.${s.layer}.${s.component}`, positions: groups[s.group] })), metric, mClean, spec.batchSize);
              top.forEach((s, i) => exact.set(siteKey(s), values[i]));
            } finally {
              corrupt.dispose();
            }
          }
          const pairRows = sites.map((s) => ({ pair: pi, run, clean: t.a.subject, corrupt: t.b.subject, relation: t.relation, metric: metric.name, component: s.component, layer: s.layer, group: s.group, score: s.score, exact: exact.get(siteKey(s)) ?? null, reuse: reuse.get(siteKey(s)) ?? null }));
          rows.push(...pairRows);
          ctx.onPartial?.(pairRows);
        } finally {
          A.dispose();
          B.dispose();
        }
        progress.tick();
      }
    }
    const means = Object.fromEntries(CIRCUIT_RUNS.map((r) => [r, circuitMeans(rows, r)])) as Record<CircuitRun, SiteScore[]>;
    const compare = (x: CircuitRun, y: CircuitRun) => compareSites(means[x], means[y], spec.k);
    const comparisons = {
      'backbone-text~vlm-image': compare('backbone-text', 'vlm-image'),
      'backbone-text~vlm-text': compare('backbone-text', 'vlm-text'),
      'vlm-text~vlm-image': compare('vlm-text', 'vlm-image'),
    };
    // The recall circuit proper (the paper's sites): MLP outputs at the entity's last token, by layer; its
    // top third of the layers in the backbone's text run, looked for in the VLM's runs.
    const recallK = Math.max(1, Math.min(spec.k, Math.floor(model.numLayers / 3)));
    const recallOf = (r: CircuitRun) => means[r].filter((x) => x.component === 'mlp_out' && x.group === 'entity-last');
    const topLayers = (r: CircuitRun) => [...recallOf(r)].sort((x, y) => Math.abs(y.score) - Math.abs(x.score)).slice(0, recallK).map((x) => x.layer);
    // Reuse at those sites: does the VLM's run write there what the backbone writes for the names? A site on the
    // image's path scores high in attribution while it still resolves the entity; only reuse says it recalls.
    const reuseAt = Object.fromEntries(
      VLM_RUNS.map((r) => [r, new Map(circuitMeans(rows, r, 'reuse').filter((x) => x.component === 'mlp_out' && x.group === 'entity-last').map((x) => [x.layer, x.score]))]),
    ) as Record<VlmRun, Map<number, number>>;
    const bbTop = topLayers('backbone-text');
    const reuseOf = (r: VlmRun) => {
      const v = bbTop.map((l) => reuseAt[r].get(l)).filter((x): x is number => x !== undefined && Number.isFinite(x));
      return v.length ? mean(v) : null;
    };
    const recall = {
      sites: 'mlp_out at entity-last, per layer',
      k: recallK,
      topLayers: Object.fromEntries(CIRCUIT_RUNS.map((r) => [r, topLayers(r)])),
      'backbone-text~vlm-image': compareSites(recallOf('backbone-text'), recallOf('vlm-image'), recallK).overlap,
      'backbone-text~vlm-text': compareSites(recallOf('backbone-text'), recallOf('vlm-text'), recallK).overlap,
      /** Mean reuse (cosine with the backbone's text run, per pair) at the backbone's top recall layers. */
      reuse: Object.fromEntries(VLM_RUNS.map((r) => [r, reuseOf(r)])) as Record<VlmRun, number | null>,
      /** The same per layer (null: no pair gave a cosine). */
      reuseByLayer: Object.fromEntries(VLM_RUNS.map((r) => [r, Array.from({ length: model.numLayers }, (_, l) => reuseAt[r].get(l) ?? null)])) as Record<VlmRun, (number | null)[]>,
    };
    const exact = exactComparison(rows, spec.k, spec.bootstrap, spec.seed);
    const confirmed = rows.filter((r) => r.exact !== null);
    return {
      kind: spec.kind,
      spec,
      table: makeTable(rows),
      summary: {
        answer: pairs.length
          ? `recall MLPs (entity's last token, top ${recallK} layers): backbone ${recall.topLayers['backbone-text'].join(',')}, VLM text ${recall.topLayers['vlm-text'].join(',')}, VLM image ${recall.topLayers['vlm-image'].join(',')}; top-${spec.k} site overlap backbone text ~ VLM image ${fmt(comparisons['backbone-text~vlm-image'].overlap)}, ~ VLM text ${fmt(comparisons['backbone-text~vlm-text'].overlap)}; reuse of the backbone's recall MLPs (cosine of what they write) from the image ${fmt(recall.reuse['vlm-image'] ?? NaN)}, from the text ${fmt(recall.reuse['vlm-text'] ?? NaN)}` +
            (exact
              ? `; exact patching of every site: the backbone's recall MLPs among its top ${spec.k} (layers ${exact.recall.layers.join(',') || 'none'}) found in the image run's top ${spec.k} ${fmt(exact.recall.found['vlm-image'] ?? NaN)}, the text run's ${fmt(exact.recall.found['vlm-text'] ?? NaN)}; their effect carried by the image run ${fmt(exact.recall.carried['vlm-image'] ?? NaN)}, the text run ${fmt(exact.recall.carried['vlm-text'] ?? NaN)}` +
                (exact.recall.ci ? `; over ${exact.recall.ci.resamples} draws of the pairs, found by the image run ${ciText(exact.recall.ci.found['vlm-image'])}, carried ${ciText(exact.recall.ci.carried['vlm-image'])}` : '')
              : '')
          : null,
        pairs: pairs.length,
        backbone: bb.from,
        comparisons,
        recall,
        exact,
        top: Object.fromEntries(CIRCUIT_RUNS.map((r) => [r, [...means[r]].sort((x, y) => Math.abs(y.score) - Math.abs(x.score)).slice(0, spec.k)])),
        meanAbsError: confirmed.length ? mean(confirmed.map((r) => Math.abs(Number(r.score) - Number(r.exact)))) : null,
        protocol: protocolSummary(source, spec, { entities: pairs.flatMap((p) => [p.a, p.b]), prefix: false, maxNewTokens: { identify: null, answer: null, patch: null } }),
        warnings: warnings.list(),
      },
    };
  } finally {
    bb.release();
  }
}

/**
 * The comparison on measured effects: only when every site of every pair was re-measured by exact patching
 * (`topK` at least the sites of a run: layers × components × groups), null otherwise (a mean over the sites each
 * pair happened to rank highest would be biased). Attribution is a linear estimate, and it is least trustworthy
 * where a site changes the residual most: layer 0's MLP, which turns a token's embedding into its state. On the
 * shipped teaching pair the backbone's exact effect there is 3× its estimate, and the late image run's estimate
 * (+0.50) has the other sign from its exact effect (−0.12) (data/teaching/README.md, session 33).
 * `recall`: the issue's "backbone's top mlp_out sites at the subject position": the backbone's top-k sites (all
 * components and groups, by |exact effect|) that are MLP outputs at the entity's last token; `found`, the share of
 * them among a VLM run's top k; `effect`, each run's mean exact effect at them; `carried`, a VLM run's summed
 * effect there over the backbone's (1: it moves the answer there as much as the backbone does).
 */
export function exactComparison(rows: readonly Row[], k: number, resamples = 0, seed = 0) {
  if (!everySiteExact(rows)) return null;
  const ex = Object.fromEntries(CIRCUIT_RUNS.map((r) => [r, circuitMeans(rows, r, 'exact')])) as Record<CircuitRun, SiteScore[]>;
  const topOf = (r: CircuitRun) => [...ex[r]].sort((x, y) => Math.abs(y.score) - Math.abs(x.score)).slice(0, k);
  const sites = topOf('backbone-text').filter((s) => s.component === 'mlp_out' && s.group === 'entity-last').sort((x, y) => x.layer - y.layer);
  const effectAt = (r: CircuitRun) => sites.map((s) => ex[r].find((x) => siteKey(x) === siteKey(s))?.score ?? NaN);
  const bbSum = effectAt('backbone-text').reduce((a, b) => a + b, 0);
  const found = (r: CircuitRun) => {
    const keys = new Set(topOf(r).map(siteKey));
    return sites.length ? sites.filter((s) => keys.has(siteKey(s))).length / sites.length : null;
  };
  const carried = (r: CircuitRun) => (sites.length && bbSum !== 0 ? effectAt(r).reduce((a, b) => a + b, 0) / bbSum : null);
  const point = { found: Object.fromEntries(VLM_RUNS.map((r) => [r, found(r)])) as Record<VlmRun, number | null>, carried: Object.fromEntries(VLM_RUNS.map((r) => [r, carried(r)])) as Record<VlmRun, number | null> };
  return {
    comparisons: {
      'backbone-text~vlm-image': compareSites(ex['backbone-text'], ex['vlm-image'], k),
      'backbone-text~vlm-text': compareSites(ex['backbone-text'], ex['vlm-text'], k),
      'vlm-text~vlm-image': compareSites(ex['vlm-text'], ex['vlm-image'], k),
    },
    recall: {
      sites: `mlp_out at entity-last among the backbone's top ${k} sites by exact effect`,
      layers: sites.map((s) => s.layer),
      found: point.found,
      effect: Object.fromEntries(CIRCUIT_RUNS.map((r) => [r, effectAt(r)])) as Record<CircuitRun, number[]>,
      carried: point.carried,
      /** How far `found` and `carried` hold on these pairs: a bootstrap over them (null: `resamples` 0 or no site). */
      ci: resamples > 0 && sites.length ? recallBootstrap(rows, sites, k, resamples, seed, point) : null,
    },
  };
}

/** `exactComparison`'s bootstrap: per VLM run, `found`'s interval (and the share of draws that agree) and `carried`'s. */
export interface RecallBootstrap {
  resamples: number;
  found: Record<VlmRun, Interval>;
  carried: Record<VlmRun, { low: number | null; high: number | null }>;
}

/**
 * How far the recall comparison can be trusted on this many pairs. Each draw resamples the pairs with replacement
 * (the same draw for the three runs, so they stay paired), recomputes every run's mean exact effect per site, and
 * asks again, for the backbone's recall sites found on all the pairs, whether each is among a VLM run's top k
 * (`found`) and what share of the backbone's effect there the run carries. Why: one site decides `found`, and
 * where a run's effects are small everywhere its rank among them is a coin toss. On the late teaching model the
 * recall site ranked 13th over all 208 entities but inside the top 10 on two of five samples of 46–48 pairs,
 * while `carried` (0.01–0.15 against the early model's 0.89–1.04) separated the pair on every sample
 * (data/teaching/README.md, sessions 33–34). Pairs, not sites, are resampled: a pair's sites share its prompts.
 */
function recallBootstrap(rows: readonly Row[], sites: readonly SiteScore[], k: number, resamples: number, seed: number, point: { found: Record<VlmRun, number | null>; carried: Record<VlmRun, number | null> }): RecallBootstrap {
  const pairIndex = new Map([...new Set(rows.map((r) => r.pair))].map((p, i) => [p, i]));
  const P = pairIndex.size;
  const keyOf = (r: Row) => siteKey(r as unknown as SiteScore);
  const recallKeys = sites.map(siteKey);
  // Per run, the exact effect of each site in each pair (NaN where a pair lacks the site), site-major, and where
  // the recall sites are among its sites (-1: not there).
  const runs = Object.fromEntries(
    CIRCUIT_RUNS.map((run) => {
      const mine = rows.filter((r) => r.run === run);
      const keys = [...new Set(mine.map(keyOf))];
      const index = new Map(keys.map((key, i) => [key, i]));
      const values = new Float64Array(keys.length * P).fill(NaN);
      for (const r of mine) values[index.get(keyOf(r))! * P + pairIndex.get(r.pair)!] = Number(r.exact);
      return [run, { keys, values, recall: recallKeys.map((key) => index.get(key) ?? -1) }];
    }),
  ) as Record<CircuitRun, { keys: string[]; values: Float64Array; recall: number[] }>;
  const meanAt = (run: CircuitRun, s: number, weight: Float64Array) => (s < 0 ? NaN : weightedMean(runs[run].values.subarray(s * P, (s + 1) * P), weight));
  const draws = Object.fromEntries(VLM_RUNS.map((r) => [r, { found: [] as number[], carried: [] as (number | null)[] }])) as Record<VlmRun, { found: number[]; carried: (number | null)[] }>;
  for (const weight of bootstrapWeights(P, resamples, seed)) {
    const bbSum = runs['backbone-text'].recall.reduce((acc, s) => acc + meanAt('backbone-text', s, weight), 0);
    for (const run of VLM_RUNS) {
      const m = runs[run].keys.map((_, s) => meanAt(run, s, weight));
      const top = new Set(
        m
          .map((v, s) => [Math.abs(v), s] as const)
          .filter(([v]) => Number.isFinite(v))
          .sort((x, y) => y[0] - x[0] || x[1] - y[1])
          .slice(0, k)
          .map(([, s]) => s),
      );
      draws[run].found.push(runs[run].recall.filter((s) => top.has(s)).length / recallKeys.length);
      const c = runs[run].recall.reduce((acc, s) => acc + (s < 0 ? NaN : m[s]), 0) / bbSum;
      draws[run].carried.push(Number.isFinite(c) ? c : null);
    }
  }
  return {
    resamples,
    found: Object.fromEntries(VLM_RUNS.map((r) => [r, drawInterval(draws[r].found, point.found[r])])) as RecallBootstrap['found'],
    carried: Object.fromEntries(
      VLM_RUNS.map((r) => {
        const { low, high } = drawInterval(draws[r].carried, point.carried[r]);
        return [r, { low, high }];
      }),
    ) as RecallBootstrap['carried'],
  };
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toFixed(2) : 'n/a';
}

/** "0.00–1.00 (62.0 % of draws agree)": a bootstrap interval as the summary's answer writes it. */
function ciText(ci: { low: number | null; high: number | null; agree?: number } | null): string {
  if (!ci) return 'n/a';
  const range = `${fmt(ci.low ?? NaN)}–${fmt(ci.high ?? NaN)}`;
  return ci.agree === undefined ? range : `${range} (${(ci.agree * 100).toFixed(1)} % of draws agree)`;
}
