// attribution: attribution patching as triage over (layer × position) for clean/corrupt entity pairs,
// with the top-k cells confirmed automatically by exact activation patching (through the scheduler:
// each confirmation starts at its layer from the cached clean states).
import { mulberry32, shuffled } from '../data/random';
import { gridCoordinates } from '../interventions/selectors';
import type { InterventionSpec } from '../interventions/types';
import type { Model } from '../models/model';
import { makeBatch } from './batch';
import type { Row } from './checkpoint';
import { Progress, Warnings, makeTable, mean, openCheckpoint, type ExperimentContext } from './context';
import { answerLogit, answerProb, attributionPatching, logitDiff, type AttributionResult, type Metric } from './attribution-patching';
import { cleanStates, sweep, type CleanState, type PatchJob } from './scheduler';
import { prepareSource } from './sources/dataset';
import { viewPicture } from './picture';
import { protocolSummary } from './protocol';
import { layersOf, selectRows, type SpecBase } from './spec';
import { scopeQuestions, type EntityRef, type PromptCase, type PromptSource } from './source';
import { attributionView } from './views';

export interface AttributionSpec extends SpecBase {
  kind: 'attribution';
  layers: number[] | null;
  metric: 'logit-diff' | 'answer-logit' | 'answer-prob';
  tokens: number[] | null;
  site: 'resid_post' | 'hidden_states';
  igSteps: number;
  topK: number;
  pairs: 'same' | 'cross' | 'mixed';
  prompts: 'identification' | 'questions';
  /** Identification prompts end with the answer prefix, so the metric reads the name's first token (schemas/common.json). */
  answerPrefix: boolean;
  positions: number[] | null;
}

function argmax(v: Float32Array): number {
  let b = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[b]) b = i;
  return b;
}

/** The metric of a pair: explicit tokens, or the clean and corrupt runs' top-1 predictions. */
export function metricFor(spec: Pick<AttributionSpec, 'metric' | 'tokens'>, cleanLogits: Float32Array, corruptLogits: Float32Array, decode?: (ids: readonly number[]) => string): Metric {
  // With the tokenizer, the name gives each token's text too (`logit[141 " Rome"]`): a figure's colour bar and
  // the table say which answers are contrasted, where ids alone told a reader nothing.
  const label = (id: number) => {
    const text = decode?.([id]);
    return text ? `${id} ${JSON.stringify(text)}` : String(id);
  };
  const plus = spec.tokens?.[0] ?? argmax(cleanLogits);
  if (spec.metric === 'answer-logit') return answerLogit(plus, label);
  if (spec.metric === 'answer-prob') return answerProb(plus, label);
  let minus = spec.tokens?.[1] ?? argmax(corruptLogits);
  if (minus === plus) {
    // Same top-1 in both runs: contrast with the clean run's runner-up instead.
    let second = plus === 0 ? 1 : 0;
    for (let i = 0; i < cleanLogits.length; i++) if (i !== plus && cleanLogits[i] > cleanLogits[second]) second = i;
    minus = second;
  }
  return logitDiff(plus, minus, label);
}

/** Hook written by an exact patch of a cell: block output l, or HF hidden_states[i]. */
export function cellHook(site: AttributionSpec['site'], layer: number, numLayers: number): string {
  if (site === 'resid_post') return `lm.blocks.${layer}.resid_post`;
  if (layer === 0) return 'lm.blocks.0.resid_pre';
  if (layer === numLayers) return 'lm.final_norm';
  return `lm.blocks.${layer - 1}.resid_post`;
}

/** Exact activation-patching jobs: the corrupt run's state at (layer, position) written into the clean run. */
export function exactPatchJobs(
  clean: { clean: CleanState; row: number },
  corrupt: { clean: CleanState; row: number },
  cells: { layer: number; position: number }[],
  site: AttributionSpec['site'],
  numLayers: number,
  keyPrefix: string,
): PatchJob[] {
  return cells.map((cell) => {
    const hook = cellHook(site, cell.layer, numLayers);
    const spec: InterventionSpec = {
      kind: 'patch',
      hook,
      at: { kind: 'positions', positions: [cell.position] },
      source: { cache: 'corrupt', row: corrupt.row, at: { kind: 'positions', positions: [cell.position] } },
    };
    return { key: `${keyPrefix}|${cell.layer}|${cell.position}`, clean: clean.clean, row: clean.row, interventions: [spec], sources: { corrupt: corrupt.clean.source }, meta: cell };
  });
}

/**
 * `limit` entities sampled with the seed as whole pairs (an entity with a partner of the kind `mode` asks
 * for), so a small sample of mixed types still has pairs to attribute; file order kept.
 */
export function pairedSample(all: EntityRef[], limit: number | null, mode: AttributionSpec['pairs'], seed: number): EntityRef[] {
  if (limit == null || all.length <= limit) return all;
  const ok = (a: EntityRef, b: EntityRef) => (mode === 'same' ? a.type === b.type : mode === 'cross' ? a.type !== b.type : true);
  const order = shuffled(mulberry32(seed), all);
  const picked = new Set<EntityRef>();
  for (const e of order) {
    if (picked.size + 2 > Math.max(limit, 2)) break;
    if (picked.has(e)) continue;
    const partner = order.find((x) => x !== e && !picked.has(x) && ok(e, x));
    if (partner) picked.add(e).add(partner);
  }
  return all.filter((e) => picked.has(e));
}

function pairsOf(pool: EntityRef[], mode: AttributionSpec['pairs']): [EntityRef, EntityRef][] {
  const out: [EntityRef, EntityRef][] = [];
  for (const e of pool) {
    const other = pool.find((x) => x !== e && (mode === 'same' ? x.type === e.type : mode === 'cross' ? x.type !== e.type : true));
    if (other) out.push([e, other]);
  }
  return out;
}

/** The summary `attributionExperiment` builds, typed from its code (runExperiment's result is typed by kind from these). */
export type AttributionSummary = Awaited<ReturnType<typeof attributionExperiment>>['summary'];

export async function attributionExperiment(model: Model, source: PromptSource, spec: AttributionSpec, ctx: ExperimentContext = {}) {
  source = scopeQuestions(source, spec.questions);
  const progress = new Progress(ctx);
  const cp = openCheckpoint(ctx, spec);
  const warnings = new Warnings();
  const L = model.numLayers;
  const layerAxis = spec.site === 'resid_post' ? L : L + 1;
  const layers = spec.layers ? layersOf(spec, layerAxis) : Array.from({ length: layerAxis }, (_, i) => i);
  const entities = pairedSample(source.entities({ types: spec.types }), spec.limit, spec.pairs, spec.seed);
  await prepareSource(source, entities);
  // Without the prefix an identification prompt's next token is the answer's first word ("The subject in this image
  // is ..."), the same for every entity: the metric would contrast "The" with "This", not the two names.
  const promptOf = (e: EntityRef): PromptCase | null => (spec.prompts === 'identification' ? source.identification(e, { prefix: spec.answerPrefix }) : source.questions(e, 'image')[0] ?? null);
  const pool = entities.filter((e) => promptOf(e));
  let pairs = pairsOf(pool, spec.pairs).filter(([a, b]) => {
    const same = promptOf(a)!.inputIds.length === promptOf(b)!.inputIds.length;
    if (!same) warnings.add([`pair ${a.subject} / ${b.subject} skipped: prompts differ in length`]);
    return same;
  });
  pairs = selectRows(spec, pairs, 'clean/corrupt pairs');
  const cases = [...new Map(pairs.flatMap(([a, b]) => [promptOf(a)!, promptOf(b)!]).map((c) => [c.id, c])).values()];
  const clean = await cleanStates(model, source, cases, spec.batchSize);
  const rows: Row[] = [];
  const perPair: {
    clean: string;
    corrupt: string;
    metric: string;
    mClean: number;
    mCorrupt: number;
    /** The top-k cells, each with its exact patching effect. */
    confirmed: { layer: number; position: number; score: number; exact: number | null }[];
  }[] = [];
  let viewCase: PromptCase | null = null;
  try {
    progress.start('attribution', pairs.length);
    for (const [pi, [a, b]] of pairs.entries()) {
      ctx.signal?.throwIfAborted();
      const ca = promptOf(a)!;
      const cb = promptOf(b)!;
      const wa = clean.where.get(ca.id)!;
      const wb = clean.where.get(cb.id)!;
      const metric = metricFor(spec, wa.clean.lastLogits[wa.row], wb.clean.lastLogits[wb.row], (ids) => source.decode(ids));
      const batchA = await makeBatch(model, source, [ca]);
      const batchB = await makeBatch(model, source, [cb]);
      let attr: AttributionResult;
      try {
        // One-prompt batches: no padding, the positions are the prompt's own.
        attr = attributionPatching(model, batchA.inputs, batchB.inputs, metric, { igSteps: spec.igSteps });
      } finally {
        batchA.dispose();
        batchB.dispose();
      }
      const scores = spec.site === 'resid_post' ? attr.scoresLayerOut : attr.scoresHidden;
      const positions = spec.positions ?? Array.from({ length: attr.T }, (_, p) => p);
      const cells = layers.flatMap((l) => positions.map((p) => ({ layer: l, position: p, score: scores[l][p] })));
      const top = [...cells].sort((x, y) => Math.abs(y.score) - Math.abs(x.score)).slice(0, spec.topK);
      const exact = new Map<string, number>();
      if (top.length) {
        const jobs = exactPatchJobs(wa, wb, top, spec.site, L, `${ca.id}>${cb.id}`);
        const mClean = metric.value(wa.clean.lastLogits[wa.row]);
        await sweep(model, jobs, {
          batchSize: spec.batchSize,
          signal: ctx.signal,
          naive: ctx.naive,
          strict: spec.strict,
          checkpoint: cp,
          executor: ctx.executor,
          onWarnings: (w) => warnings.add(w),
          toRows: (out) => [{ exact: metric.value(out.lastLogits) - mClean }],
          onRows: (r, job) => {
            const c = job.meta as { layer: number; position: number };
            exact.set(`${c.layer}/${c.position}`, Number(r[0].exact));
          },
        });
      }
      const pairRows = cells.map((c) => {
        const g = gridCoordinates(ca.spans, c.position);
        return {
          pair: pi,
          clean: a.subject,
          corrupt: b.subject,
          metric: metric.name,
          layer: c.layer,
          position: c.position,
          kind: g ? 'image' : 'text',
          // The position's label, as the logit lens's rows have it: the live view draws it before the picture.
          inputText: g ? `img ${g.row},${g.col}` : source.decode([ca.inputIds[c.position]]),
          gridRow: g ? g.row : null,
          gridCol: g ? g.col : null,
          score: c.score,
          exact: exact.get(`${c.layer}/${c.position}`) ?? null,
        };
      });
      rows.push(...pairRows);
      ctx.onPartial?.(pairRows);
      const confirmed = pairRows.filter((r) => r.exact !== null);
      perPair.push({ clean: a.subject, corrupt: b.subject, metric: metric.name, mClean: attr.mClean, mCorrupt: attr.mCorrupt, confirmed: confirmed.map((r) => ({ layer: r.layer, position: r.position, score: r.score, exact: r.exact })) });
      viewCase ??= ca;
      progress.tick();
    }
  } finally {
    clean.dispose();
  }
  const confirmed = rows.filter((r) => r.exact !== null);
  // In the view's order (views.ts draws a pair's positions ascending), which the picture's patches index.
  const viewPositions = viewCase ? [...new Set(spec.positions ?? viewCase.inputIds.map((_, p) => p))].sort((a, b) => a - b) : [];
  // The picture under the view's patch grid: each patch coloured by its effect at the chosen layer (view.image).
  const picture = viewCase ? await viewPicture(source, viewCase, viewPositions) : null;
  return {
    kind: spec.kind,
    spec,
    table: makeTable(rows),
    summary: {
      answer: confirmed.length ? `score ${Number(confirmed[0].score).toExponential(2)}, exact ${Number(confirmed[0].exact).toExponential(2)}` : null,
      pairs: perPair,
      igSteps: spec.igSteps,
      site: spec.site,
      meanAbsError: confirmed.length ? mean(confirmed.map((r) => Math.abs(Number(r.score) - Number(r.exact)))) : null,
      protocol: protocolSummary(source, spec, { entities, prefix: spec.prompts === 'identification' && spec.answerPrefix, maxNewTokens: { identify: null, answer: null, patch: null } }),
      warnings: warnings.list(),
      // The live view's function on all rows (views.ts: the first pair's map), with the picture under its patches.
      view: viewCase ? { ...attributionView({ spec, rows, summary: {} })!, image: picture } : null,
    },
  };
}
