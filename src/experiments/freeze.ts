// freeze (Cohen et al. 2024 §6, forward patching): image tokens stop updating at block l's output until
// block T (inputs of blocks l+1..T at image positions = block l's output) and resume after; is the
// entity still identified? Entities identified when frozen from early layers are "early-identified";
// their text/image accuracies and gap are compared with the late-identified ones.
import type { Selector } from '../interventions/selectors';
import type { Model } from '../models/model';
import { SpecError } from '../errors';
import type { Row } from './checkpoint';
import { Progress, Warnings, identify, makeTable, names, openCheckpoint, type ExperimentContext, sweepContext } from './context';
import { eosSet, untilEos } from './greedy';
import { answerQuestions, type AnswerRow } from './recall-gap';
import { cleanStates, sweep, type PatchJob } from './scheduler';
import { prepareSource } from './sources/dataset';
import { patchPrefixOn, protocolSummary, type PatchPrefix } from './protocol';
import { layersOf, type SpecBase } from './spec';
import { scopeQuestions, type EntityRef, type PromptSource } from './source';
import { entityAccuracy, freezeView } from './views';

export interface FreezeExperimentSpec extends SpecBase {
  kind: 'freeze';
  layers: number[] | null;
  until: number | null;
  earlyCutoff: number | null;
  split: boolean;
  identifiedOnly: boolean;
  at: Selector | string;
  maxNewTokens: number;
  untilRelative?: boolean;
  identifyTokens?: number;
  answerTokens?: number;
  patchPrefix?: PatchPrefix;
}

/**
 * T and the early cutoff: the authors freeze until block 20 on every model (fwd_patch.py:75 `--target`
 * default 20) and call identification from the first 5 layers early; on models with fewer layers T is
 * the last layer. With `untilRelative` both scale with depth (20/32 and 5/32 of the layers).
 */
export function freezeBounds(spec: Pick<FreezeExperimentSpec, 'until' | 'earlyCutoff' | 'untilRelative'>, numLayers: number): { until: number; earlyCutoff: number } {
  const relative = spec.untilRelative ?? false;
  const until = spec.until ?? (relative ? Math.min(numLayers - 1, Math.max(1, Math.round((numLayers * 20) / 32))) : Math.max(1, Math.min(20, numLayers - 1)));
  if (until >= numLayers) throw new SpecError(`freeze spec: field "until" ${until} must be below the model's ${numLayers} layers`, 'until');
  const earlyCutoff = spec.earlyCutoff ?? (relative ? Math.max(1, Math.round((numLayers * 5) / 32)) : Math.max(1, Math.min(5, until - 1)));
  return { until, earlyCutoff };
}

function groupAccuracy(answers: readonly AnswerRow[], keys: ReadonlySet<string>) {
  const acc = (cond: 'text' | 'image') => entityAccuracy(answers.filter((r) => r.condition === cond && keys.has(r.entity)));
  const textAcc = acc('text');
  const visualAcc = acc('image');
  return { n: keys.size, visualAcc, textAcc, gap: textAcc - visualAcc };
}

/** The summary `freezeExperiment` builds, typed from its code (runExperiment's result is typed by kind from these). */
export type FreezeSummary = Awaited<ReturnType<typeof freezeExperiment>>['summary'];

export async function freezeExperiment(model: Model, source: PromptSource, spec: FreezeExperimentSpec, ctx: ExperimentContext = {}) {
  source = scopeQuestions(source, spec.questions);
  const progress = new Progress(ctx);
  const cp = openCheckpoint(ctx, spec);
  const warnings = new Warnings();
  const { until, earlyCutoff } = freezeBounds(spec, model.numLayers);
  // l = T-1 would freeze nothing (the input of block T already is block T-1's output): not a default.
  const layers = spec.layers ? layersOf(spec, model.numLayers) : Array.from({ length: Math.max(1, until - 1) }, (_, i) => i);
  for (const [i, l] of layers.entries())
    if (l >= until) throw new SpecError(`freeze spec: field "layers[${i}]" = ${l} must be below until = ${until} (frozen from l through T)`, `layers[${i}]`);
  const entities = source.entities({ types: spec.types, limit: spec.limit, seed: spec.seed });
  await prepareSource(source, entities);
  const ids = await identify(model, source, entities, { ...spec, identifyTokens: spec.identifyTokens ?? 20 }, ctx, cp, progress);
  // The frozen run uses the patching prompt (fwd_patch.py:38-41: the type's query with its prefix, as the template renders it).
  const prefix = patchPrefixOn(spec.patchPrefix, source.template);
  const pool = (spec.identifiedOnly ? ids.filter((r) => r.identified) : ids).map((r) => ({ entity: r.entity, prompt: source.identification(r.entity, { prefix })! }));
  const clean = await cleanStates(model, source, pool.map((p) => p.prompt), spec.batchSize);
  const eos = eosSet(model);
  let rows: Row[];
  try {
    const jobs: PatchJob[] = [];
    for (const p of pool) {
      const w = clean.where.get(p.prompt.id)!;
      for (const l of layers)
        jobs.push({
          key: `${p.entity.key}|${l}`,
          clean: w.clean,
          row: w.row,
          generate: spec.maxNewTokens,
          interventions: [{ kind: 'freeze', from: l, until, at: spec.at, source: { cache: 'clean' } }],
          meta: { entity: p.entity, layer: l },
        });
    }
    progress.start('sweep', jobs.length);
    rows = await sweep(model, jobs, {
      ...sweepContext(spec, ctx, cp, progress, warnings),
      toRows: (out) => {
        const m = out.job.meta as { entity: EntityRef; layer: number };
        const text = source.decode(untilEos(out.newTokens ?? [], eos));
        return [{ entity: m.entity.key, subject: m.entity.subject, type: m.entity.type, sourceLayer: m.layer, until, generation: text, identified: names(text, m.entity, spec.match) }];
      },
    });
  } finally {
    clean.dispose();
  }
  const early = new Set(rows.filter((r) => (r.sourceLayer as number) < earlyCutoff && r.identified).map((r) => String(r.entity)));
  const late = new Set(pool.map((p) => p.entity.key).filter((k) => !early.has(k)));
  let split: { early: ReturnType<typeof groupAccuracy>; late: ReturnType<typeof groupAccuracy> } | null = null;
  if (spec.split && pool.length) {
    const answers = await answerQuestions(model, source, new Set(pool.map((p) => p.entity.key)), { ...spec, maxNewTokens: spec.answerTokens ?? 100 }, ctx, progress, cp);
    split = { early: groupAccuracy(answers, early), late: groupAccuracy(answers, late) };
  }
  // The figure is the live view's function on all rows (views.ts), given the split measured after the sweep.
  const view = freezeView({ spec: { ...spec, layers }, rows, summary: { earlyCutoff, split } });
  return {
    kind: spec.kind,
    spec,
    table: makeTable(rows),
    summary: {
      answer: rows.length ? String(rows[0].generation) : null,
      entitiesTried: entities.length,
      entities: pool.length,
      until,
      earlyCutoff,
      sourceLayers: layers,
      identified: view?.identified ?? layers.map(() => NaN),
      earlyIdentified: early.size,
      split,
      protocol: protocolSummary(source, spec, {
        entities: pool.map((p) => p.entity),
        prefix,
        maxNewTokens: { identify: spec.identifyTokens ?? 20, answer: spec.split ? spec.answerTokens ?? 100 : null, patch: spec.maxNewTokens },
        extra: { until, earlyCutoff, untilRelative: spec.untilRelative ?? false, patchPrefix: spec.patchPrefix ?? 'authors' },
      }),
      warnings: warnings.list(),
      view,
    },
  };
}
