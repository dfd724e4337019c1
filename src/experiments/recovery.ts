// recovery ("Too Late to Recall"): (1) backbone → VLM patching: the text-only LLM's residual at the last
// entity token of a prompt naming the entity, at layer l, is written into the VLM's residual at the
// last image token (or a chosen position) at the same layer; factual accuracy vs the unpatched VLM,
// swept over l. (2) Chain-of-thought: "first name the entity, then answer" vs the direct question.
import { SpecError } from '../errors';
import type { Model } from '../models/model';
import { loadModelWithAssets } from './assets';
import type { Row } from './checkpoint';
import { Progress, Warnings, answerCorrect, generateCached, makeTable, mean, openCheckpoint, type ExperimentContext, type ExperimentResult, sweepContext, identifiedPool } from './context';
import { eosSet, untilEos } from './greedy';
import { cleanStates, sweep, type PatchJob } from './scheduler';
import { prepareSource } from './sources/dataset';
import { layersOf, type SpecBase } from './spec';
import { scopeQuestions, type PromptCase, type PromptSource } from './source';

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
}

export const DEFAULT_COT_SUFFIX = 'First name what is shown in the image, then answer the question.';

function targetSelector(position: RecoverySpec['position']) {
  if (position === 'last-image') return { kind: 'image-last' as const };
  if (position === 'query') return { kind: 'query' as const, last: true };
  return { kind: 'last' as const };
}

function accuracyOf(rows: readonly Row[], pred: (r: Row) => boolean): number {
  const per = new Map<string, number[]>();
  for (const r of rows) if (pred(r)) per.set(String(r.entity), [...(per.get(String(r.entity)) ?? []), Number(r.correct)]);
  return mean([...per.values()].map(mean));
}

export async function recovery(model: Model, source: PromptSource, spec: RecoverySpec, ctx: ExperimentContext = {}): Promise<ExperimentResult<RecoverySpec>> {
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

  let backbone: Model | null = ctx.backbone ?? null;
  const ownBackbone = !backbone && spec.backbone !== null;
  if (ownBackbone) backbone = loadModelWithAssets(spec.backbone!);
  const layers = layersOf(spec, model.numLayers);
  try {
    if (backbone) {
      if (backbone.dModel !== model.dModel || backbone.numLayers !== model.numLayers)
        throw new SpecError(
          `recovery: the backbone (d_model ${backbone.dModel}, ${backbone.numLayers} layers) does not match the VLM (d_model ${model.dModel}, ${model.numLayers} layers)`,
          'backbone',
        );
      const pairs = imageQs.flatMap((q) => {
        const b = source.backbonePrompt(q, backbone!);
        if (!b || !b.spans.subject) {
          warnings.add([`recovery: no backbone prompt with an entity span for ${q.id}`]);
          return [];
        }
        return [{ q, b }];
      });
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
    } else warnings.add(['recovery: no backbone given (spec.backbone or ctx.backbone): only chain-of-thought was measured']);
  } finally {
    if (ownBackbone) backbone?.dispose();
  }
  if (rows.length === 0) warnings.add(['recovery: no questions to answer (no identified entity with questions)']);
  const imageAcc = accuracyOf(rows, (r) => r.condition === 'image');
  const textAcc = accuracyOf(rows, (r) => r.condition === 'text');
  const patchedAcc = layers.map((l) => accuracyOf(rows, (r) => r.condition === 'patched' && r.layer === l));
  const best = patchedAcc.reduce((bi, a, i) => (Number.isFinite(a) && (bi < 0 || a > patchedAcc[bi]) ? i : bi), -1);
  return {
    kind: spec.kind,
    spec,
    table: makeTable(rows),
    summary: {
      answer: `image ${imageAcc.toFixed(3)}, text ${textAcc.toFixed(3)}${best >= 0 ? `, patched at ${layers[best]}: ${patchedAcc[best].toFixed(3)}` : ''}`,
      entities: pool.length,
      questions: imageQs.length,
      imageAcc,
      textAcc,
      cotAcc: spec.cot ? accuracyOf(rows, (r) => r.condition === 'cot') : null,
      layers,
      patchedAcc,
      bestLayer: best >= 0 ? layers[best] : null,
      recovered: best >= 0 && textAcc !== imageAcc ? (patchedAcc[best] - imageAcc) / (textAcc - imageAcc) : null,
      warnings: warnings.list(),
    },
  };
}
