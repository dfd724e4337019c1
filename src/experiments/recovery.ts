// recovery ("Too Late to Recall"): (1) backbone → VLM patching: the text-only LLM's residual at the last
// entity token of a prompt naming the entity, at layer l, is written into the VLM's residual at the
// last image token (or a chosen position) at the same layer; factual accuracy vs the unpatched VLM,
// swept over l. (2) Chain-of-thought: "first name the entity, then answer" vs the direct question.
import { SpecError } from '../errors';
import type { Model } from '../models/model';
import { backboneSource, resolveBackbone } from './backbone';
import { mulberry32, shuffled } from '../data/random';
import { bootstrapWeights, entityAccuracies, weightedMean } from '../data/stats';
import { protocolSummary } from './protocol';
import { drawInterval } from './resolution-ci';
import type { Row } from './checkpoint';
import { Progress, Warnings, answerCorrect, generateCached, makeTable, openCheckpoint, type ExperimentContext, sweepContext, identifiedPool } from './context';
import { eosSet, untilEos } from './greedy';
import { cleanStates, sweep, type PatchJob } from './scheduler';
import { prepareSource } from './sources/dataset';
import { layersOf, type SpecBase } from './spec';
import { scopeQuestions, type PromptCase, type PromptSource } from './source';
import { entityAccuracy } from './views';

export interface RecoverySpec extends SpecBase {
  kind: 'recovery';
  layers: number[] | null;
  backbone: string | null;
  backboneTemplate: string;
  position: 'last-image' | 'query' | 'last';
  cot: boolean;
  /** One suffix, or one per entity type (a teaching model follows the wording it was tuned on). */
  cotSuffix: string | Partial<Record<string, string>> | null;
  cotMaxNewTokens: number;
  identifiedOnly: boolean;
  maxNewTokens: number;
  identifyTokens?: number;
  /** Layer `recovered` is reported at (pre-registered); null = chosen on a seeded half of the entities, reported on the other. */
  recoveredLayer?: number | null;
  /** Cluster-bootstrap draws over the entities `recovered` is reported on, for its 95 % interval (0: none). */
  bootstrap: number;
}

export const DEFAULT_COT_SUFFIX = 'First name what is shown in the image, then answer the question.';

function targetSelector(position: RecoverySpec['position']) {
  if (position === 'last-image') return { kind: 'image-last' as const };
  if (position === 'query') return { kind: 'query' as const, last: true };
  return { kind: 'last' as const };
}

/** Accuracy per entity, then over entities: the recovery figure's own rule (views.ts), so they cannot differ. */
function accuracyOf(rows: readonly Row[], pred: (r: Row) => boolean): number {
  return entityAccuracy(rows.filter(pred));
}

/** The summary `recovery` builds, typed from its code (runExperiment's result is typed by kind from these). */
export type RecoverySummary = Awaited<ReturnType<typeof recovery>>['summary'];

export async function recovery(model: Model, source: PromptSource, spec: RecoverySpec, ctx: ExperimentContext = {}) {
  source = scopeQuestions(source, spec.questions);
  const progress = new Progress(ctx);
  const cp = openCheckpoint(ctx, spec);
  const warnings = new Warnings();
  const entities = source.entities({ types: spec.types, limit: spec.limit, seed: spec.seed });
  await prepareSource(source, entities);
  const pool = await identifiedPool(model, source, entities, spec, ctx, cp, progress);
  const imageQs = pool.flatMap((e) => source.questions(e, 'image'));
  const textQs = pool.flatMap((e) => source.questions(e, 'text'));
  const rows: Row[] = [];
  const answerRow = (c: PromptCase, condition: string, layer: number | null, text: string): Row => ({
    entity: c.entity.key,
    subject: c.entity.subject,
    type: c.entity.type,
    relation: c.relation ?? null,
    condition,
    layer,
    generation: text,
    correct: answerCorrect(text, c, spec.match),
  });
  const direct = await generateCached(model, source, [...imageQs, ...textQs], { maxNewTokens: spec.maxNewTokens, batchSize: spec.batchSize, tag: 'direct' }, ctx, cp, progress);
  for (const c of [...imageQs, ...textQs]) rows.push(answerRow(c, c.modality, null, direct.get(c.id)!.text));
  ctx.onPartial?.(rows.slice());

  if (spec.cot) {
    const suffixFor = (type: string) => (typeof spec.cotSuffix === 'string' ? spec.cotSuffix : spec.cotSuffix?.[type]) ?? DEFAULT_COT_SUFFIX;
    const cotQs = pool.flatMap((e) => source.questions(e, 'image', { cotSuffix: suffixFor(e.type) }));
    if (cotQs.length === 0) warnings.add(['chain-of-thought: the data has no chain-of-thought image questions']);
    const cot = await generateCached(model, source, cotQs, { maxNewTokens: spec.cotMaxNewTokens, batchSize: spec.batchSize, tag: 'cot' }, ctx, cp, progress);
    const cotRows = cotQs.map((c) => answerRow(c, 'cot', null, cot.get(c.id)!.text));
    rows.push(...cotRows);
    ctx.onPartial?.(cotRows);
  }

  const bb = resolveBackbone(model, spec, ctx);
  if (bb) warnings.add(bb.warnings);
  const backbone = bb?.model ?? null;
  const layers = layersOf(spec, model.numLayers);
  try {
    if (backbone) {
      const pairs = imageQs.flatMap((q) => {
        const b = source.backbonePrompt(q, backbone, { template: spec.backboneTemplate });
        if (!b || !b.spans.subject) {
          warnings.add([`recovery: no backbone prompt with an entity span for ${q.id}`]);
          return [];
        }
        return [{ q, b }];
      });
      // The backbone's own answers: the ceiling the paper measures recovery against ("Too Late to Recall").
      const bbGen = await generateCached(backbone, backboneSource(source, backbone), pairs.map((p) => p.b), { maxNewTokens: spec.maxNewTokens, batchSize: spec.batchSize, tag: 'backbone' }, ctx, cp, progress);
      for (const { b } of pairs) rows.push(answerRow(b, 'backbone', null, bbGen.get(b.id)!.text));
      if (backbone.dModel !== model.dModel || backbone.numLayers !== model.numLayers)
        throw new SpecError(
          `recovery: the backbone (d_model ${backbone.dModel}, ${backbone.numLayers} layers) does not match the VLM (d_model ${model.dModel}, ${model.numLayers} layers)`,
          'backbone',
        );
      const vlmClean = await cleanStates(model, source, pairs.map((p) => p.q), spec.batchSize);
      const bbClean = await cleanStates(backbone, source, [...new Map(pairs.map((p) => [p.b.id, p.b])).values()], spec.batchSize);
      const eos = eosSet(model);
      try {
        const jobs: PatchJob[] = [];
        for (const { q, b } of pairs) {
          const v = vlmClean.where.get(q.id)!;
          const s = bbClean.where.get(b.id)!;
          for (const l of layers)
            jobs.push({
              key: `${q.id}|${l}`,
              clean: v.clean,
              row: v.row,
              generate: spec.maxNewTokens,
              interventions: [{ kind: 'patch', layers: [l], at: targetSelector(spec.position), source: { cache: 'backbone', row: s.row, at: { kind: 'subject', last: true } } }],
              sources: { backbone: s.clean.source },
              meta: { q, layer: l },
            });
        }
        progress.start('sweep', jobs.length);
        const patched = await sweep(model, jobs, {
          ...sweepContext(spec, ctx, cp, progress, warnings),
          toRows: (out) => {
            const m = out.job.meta as { q: PromptCase; layer: number };
            return [answerRow(m.q, 'patched', m.layer, source.decode(untilEos(out.newTokens ?? [], eos)))];
          },
        });
        rows.push(...patched);
      } finally {
        vlmClean.dispose();
        bbClean.dispose();
      }
    } else warnings.add(['recovery: no backbone given (spec.backbone, ctx.backbone or a backbone/ subfolder of the model): only chain-of-thought was measured']);
  } finally {
    bb?.release();
  }
  if (rows.length === 0) warnings.add(['recovery: no questions to answer (no identified entity with questions)']);
  const imageAcc = accuracyOf(rows, (r) => r.condition === 'image');
  const textAcc = accuracyOf(rows, (r) => r.condition === 'text');
  const backboneAcc = backbone ? accuracyOf(rows, (r) => r.condition === 'backbone') : null;
  const patchedAcc = layers.map((l) => accuracyOf(rows, (r) => r.condition === 'patched' && r.layer === l));
  const best = argmax(patchedAcc);
  const held = recoveredHeldOut(rows, layers, spec, pool.map((e) => e.key));
  return {
    kind: spec.kind,
    spec,
    table: makeTable(rows),
    summary: {
      answer:
        `image ${imageAcc.toFixed(3)}, text ${textAcc.toFixed(3)}${backboneAcc !== null ? `, backbone ${backboneAcc.toFixed(3)}` : ''}${best >= 0 ? `, patched at ${layers[best]}: ${patchedAcc[best].toFixed(3)}` : ''}` +
        (held.recovered !== null ? `; recovered ${held.recovered.toFixed(2)} of the gap at layer ${held.layer}${held.ci ? ` (95 % interval ${boundText(held.ci.recovered.low)}–${boundText(held.ci.recovered.high)} over ${held.ci.entities} entities)` : ''}` : ''),
      entities: pool.length,
      questions: imageQs.length,
      imageAcc,
      textAcc,
      backboneAcc,
      cotAcc: spec.cot ? accuracyOf(rows, (r) => r.condition === 'cot') : null,
      layers,
      patchedAcc,
      // The best layer on all entities, descriptive only: `recovered` is not measured where it was chosen.
      bestLayer: best >= 0 ? layers[best] : null,
      recovered: held.recovered,
      recoveredOfBackbone: held.recoveredOfBackbone,
      recoveredLayer: held.layer,
      /** 95 % intervals of `recovered` and `recoveredOfBackbone` over `resamples` draws of the entities they are reported on. */
      recoveredCI: held.ci,
      recoveredSelection: held.selection,
      protocol: protocolSummary(source, spec, {
        entities: pool,
        prefix: false,
        maxNewTokens: { identify: spec.identifiedOnly ? spec.identifyTokens ?? 20 : null, answer: spec.maxNewTokens, patch: spec.maxNewTokens },
        extra: { backboneTemplate: spec.backboneTemplate, backbone: bb?.from ?? null, cotMaxNewTokens: spec.cot ? spec.cotMaxNewTokens : null },
      }),
      warnings: warnings.list(),
    },
  };
}

/** A bootstrap bound as the answer writes it: null (draws with no gap to recover) is an open end. */
function boundText(v: number | null): string {
  return v === null ? 'open' : v.toFixed(2);
}

function argmax(xs: readonly number[]): number {
  return xs.reduce((bi, a, i) => (Number.isFinite(a) && (bi < 0 || a > xs[bi]) ? i : bi), -1);
}

/**
 * Recovery at a layer not picked on the data it is reported on: the spec's pre-registered layer, else the
 * best layer on a seeded half of the entities, reported on the other half. Recovered = (patched − image)
 * / (text − image), and / (backbone − image) against the backbone's own accuracy.
 */
function recoveredHeldOut(rows: readonly Row[], layers: readonly number[], spec: RecoverySpec, keys: string[]) {
  const none = { recovered: null, recoveredOfBackbone: null, layer: null, selection: null, ci: null } as const;
  if (!rows.some((r) => r.condition === 'patched')) return none;
  let layer: number | null = spec.recoveredLayer ?? null;
  let evalKeys = new Set(keys);
  let selection: Record<string, unknown>;
  if (layer !== null) {
    if (!layers.includes(layer)) return { ...none, selection: { by: 'pre-registered', note: `layer ${layer} was not swept` } };
    selection = { by: 'pre-registered', layer };
  } else {
    if (keys.length < 2) return { ...none, selection: { by: 'held-out', note: 'fewer than 2 entities: no held-out half' } };
    const order = shuffled(mulberry32(spec.seed + 7), keys);
    const pick = new Set(order.slice(0, Math.floor(keys.length / 2)));
    evalKeys = new Set(order.slice(Math.floor(keys.length / 2)));
    const pickAcc = layers.map((l) => accuracyOf(rows, (r) => r.condition === 'patched' && r.layer === l && pick.has(String(r.entity))));
    const i = argmax(pickAcc);
    if (i < 0) return { ...none, selection: { by: 'held-out', note: 'no patched answer on the selection half' } };
    layer = layers[i];
    selection = { by: 'held-out', layer, selectEntities: pick.size, reportEntities: evalKeys.size, seed: spec.seed };
  }
  const on = (cond: string, extra: (r: Row) => boolean = () => true) => accuracyOf(rows, (r) => r.condition === cond && evalKeys.has(String(r.entity)) && extra(r));
  const image = on('image');
  const patched = on('patched', (r) => r.layer === layer);
  const text = on('text');
  const bbAcc = on('backbone');
  return {
    ...recoveredShares(patched, image, text, bbAcc),
    layer,
    selection,
    ci: spec.bootstrap > 0 ? recoveredBootstrap(rows.filter((r) => evalKeys.has(String(r.entity))), layer, spec.bootstrap, spec.seed) : null,
  };
}

/** The share of the gap the patch gives back, against the text and against the backbone (null: no gap). */
function recoveredShares(patched: number, image: number, text: number, backbone: number) {
  return {
    recovered: text !== image && Number.isFinite(patched) ? (patched - image) / (text - image) : null,
    recoveredOfBackbone: Number.isFinite(backbone) && backbone !== image && Number.isFinite(patched) ? (patched - image) / (backbone - image) : null,
  };
}

/**
 * How far `recovered` holds on the entities it is reported on: a cluster bootstrap (entities resampled with
 * replacement, each entity's questions kept together, as the probe's lag: resolution-ci.ts), the layer kept where it
 * was chosen. Why: the shipped late teaching model recovered 0.92 of its gap on 12 entities (95 %: 0.73–1.00) and
 * 0.51 on 100 of all 208 (0.36–0.64; data/teaching/README.md, session 35): a ratio of two differences of
 * accuracies on a few dozen entities moves a lot, and the issue's test is "at least half of the gap", so the
 * interval says whether a sample settles it.
 */
export function recoveredBootstrap(rows: readonly Row[], layer: number, resamples: number, seed: number) {
  const keys = [...new Set(rows.map((r) => String(r.entity)))].sort();
  const index = new Map(keys.map((k, i) => [k, i]));
  // Per condition, each entity's accuracy (NaN where it has no scored row): the entities accuracyOf averages.
  const perEntity = (pred: (r: Row) => boolean) => {
    const out: number[] = new Array(keys.length).fill(NaN);
    const scored = rows.filter((r) => pred(r) && r.correct !== null && r.correct !== undefined);
    for (const e of entityAccuracies(scored.map((r) => ({ entity: String(r.entity), correct: Number(r.correct) })))) out[index.get(e.entity)!] = e.mean;
    return out;
  };
  const acc = {
    patched: perEntity((r) => r.condition === 'patched' && r.layer === layer),
    image: perEntity((r) => r.condition === 'image'),
    text: perEntity((r) => r.condition === 'text'),
    backbone: perEntity((r) => r.condition === 'backbone'),
  };
  const draws = { recovered: [] as (number | null)[], recoveredOfBackbone: [] as (number | null)[] };
  for (const weight of bootstrapWeights(keys.length, resamples, seed)) {
    const mean = (a: number[]) => weightedMean(a, weight);
    const r = recoveredShares(mean(acc.patched), mean(acc.image), mean(acc.text), mean(acc.backbone));
    draws.recovered.push(r.recovered);
    draws.recoveredOfBackbone.push(r.recoveredOfBackbone);
  }
  // A draw whose text and image accuracies tie has no gap to recover (null): it sorts past every number.
  const bounds = (v: (number | null)[]) => {
    const { low, high } = drawInterval(v, null);
    return { low, high };
  };
  return { resamples, entities: keys.length, layer, recovered: bounds(draws.recovered), recoveredOfBackbone: bounds(draws.recoveredOfBackbone) };
}
