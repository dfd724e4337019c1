// recall-gap (Cohen et al. 2024 §4): factual accuracy with the entity named in text vs shown as an image,
// on the entities the model identifies from their image. Accuracy = mean over entities of the per-entity
// mean; drop = text − image, with the paired Wilcoxon signed-rank test, overall and per entity type.
// With a backbone ("Too Late to Recall" §3: does the VLM recall fewer facts than the LLM it was built
// on?), the backbone answers each row's text question too, and the three conditions are compared on the
// same identified entities. Both answer-match rules are scored; the spec's `match` picks the headline one.
import { compareConditions, entityAccuracies, proportionCI, type AnswerRecord } from '../data/stats';
import type { Model } from '../models/model';
import type { Row } from './checkpoint';
import {
  Progress,
  answerCorrect,
  generateCached,
  identify,
  makeTable,
  openCheckpoint,
  otherRule,
  ruleLabel,
  type ExperimentContext,
} from './context';
import { backboneSource, resolveBackbone } from './backbone';
import { protocolSummary } from './protocol';
import { prepareSource } from './sources/dataset';
import type { SpecBase } from './spec';
import { scopeQuestions, type PromptCase, type PromptSource } from './source';

export interface RecallGapSpec extends SpecBase {
  kind: 'recall-gap';
  identify: boolean;
  identifyTokens: number;
  maxNewTokens: number;
  backbone?: string | null;
  backboneTemplate?: string;
}

export interface AnswerRow extends Row {
  entity: string;
  subject: string;
  type: string;
  condition: 'identify' | 'text' | 'image' | 'backbone';
  relation: string | null;
  question: string | null;
  generation: string;
  correct: boolean;
  correctPopvqa: boolean;
  correctAlias: boolean;
}

function answerRow(c: PromptCase, condition: AnswerRow['condition'], text: string, match: SpecBase['match']): AnswerRow {
  const popvqa = answerCorrect(text, c, 'popvqa');
  const alias = answerCorrect(text, c, 'alias');
  return {
    entity: c.entity.key,
    subject: c.entity.subject,
    type: c.entity.type,
    condition,
    relation: c.relation ?? null,
    question: c.question ?? null,
    generation: text,
    correct: match === 'alias' ? alias : popvqa,
    correctPopvqa: popvqa,
    correctAlias: alias,
  };
}

/** Text and image answers of the given entities' questions, scored with both rules. */
export async function answerQuestions(
  model: Model,
  source: PromptSource,
  entityKeys: ReadonlySet<string>,
  spec: SpecBase & { maxNewTokens: number },
  ctx: ExperimentContext,
  progress: Progress,
  cp: ReturnType<typeof openCheckpoint>,
  opts: { cotSuffix?: string; tag?: string } = {},
): Promise<AnswerRow[]> {
  const es = source.entities({ types: spec.types }).filter((e) => entityKeys.has(e.key));
  const rows: AnswerRow[] = [];
  for (const modality of ['text', 'image'] as const) {
    const cases = es.flatMap((e) => source.questions(e, modality));
    const gens = await generateCached(model, source, cases, { maxNewTokens: spec.maxNewTokens, batchSize: spec.batchSize, tag: `${opts.tag ?? 'qa'}-${modality}` }, ctx, cp, progress);
    for (const c of cases) rows.push(answerRow(c, modality, gens.get(c.id)!.text, spec.match));
  }
  return rows;
}

function records(rows: readonly AnswerRow[], condition: 'text' | 'image' | 'backbone', field: 'correctPopvqa' | 'correctAlias'): AnswerRecord[] {
  return rows.filter((r) => r.condition === condition).map((r) => ({ entity: r.entity, type: r.type, correct: r[field] }));
}

/** Accuracy comparison of text vs image answers under one rule, in the shape summaries and views use. */
export function gapSummary(rows: readonly AnswerRow[], match: SpecBase['match']) {
  const field = match === 'alias' ? 'correctAlias' : 'correctPopvqa';
  const text = records(rows, 'text', field);
  const image = records(rows, 'image', field);
  const cmp = compareConditions(text, image);
  const ci = (recs: AnswerRecord[], keys: Set<string>) => {
    const c = proportionCI(entityAccuracies(recs.filter((r) => keys.has(r.entity))).map((e) => e.mean));
    return [c.lo, c.hi] as [number, number];
  };
  const viewRow = (type: string, keys: Set<string>, g: { text: { mean: number }; image: { mean: number }; wilcoxon: { pValue: number } }) => ({
    type,
    n: keys.size,
    textAcc: g.text.mean,
    textCI: ci(text, keys),
    imageAcc: g.image.mean,
    imageCI: ci(image, keys),
    pValue: Number.isFinite(g.wilcoxon.pValue) ? g.wilcoxon.pValue : null,
  });
  const typeOf = new Map(rows.map((r) => [r.entity, r.type]));
  const all = new Set(cmp.entities);
  return {
    matchRule: ruleLabel(match),
    entities: cmp.entities.length,
    textAcc: cmp.text.mean,
    imageAcc: cmp.image.mean,
    drop: cmp.drop.mean,
    dropCI: [cmp.drop.lo, cmp.drop.hi],
    pValue: cmp.wilcoxon.pValue,
    byType: Object.fromEntries(
      Object.entries(cmp.byType).map(([t, g]) => [t, { n: g.text.nEntities, textAcc: g.text.mean, imageAcc: g.image.mean, drop: g.drop.mean, pValue: g.wilcoxon.pValue }]),
    ),
    view: {
      rows: Object.entries(cmp.byType).map(([t, g]) => viewRow(t, new Set(cmp.entities.filter((k) => typeOf.get(k) === t)), g)),
      overall: viewRow('all', all, cmp),
      model: null,
      matchRule: ruleLabel(match),
    },
    comparison: cmp,
  };
}

/** The summary `recallGap` builds, typed from its code (runExperiment's result is typed by kind from these). */
export type RecallGapSummary = Awaited<ReturnType<typeof recallGap>>['summary'];

export async function recallGap(model: Model, source: PromptSource, spec: RecallGapSpec, ctx: ExperimentContext = {}) {
  source = scopeQuestions(source, spec.questions);
  const progress = new Progress(ctx);
  const cp = openCheckpoint(ctx, spec);
  const entities = source.entities({ types: spec.types, limit: spec.limit, seed: spec.seed });
  await prepareSource(source, entities);
  const rows: AnswerRow[] = [];
  let keep = new Set(entities.map((e) => e.key));
  let identifiedCount: number | null = null;
  if (spec.identify) {
    const ids = await identify(model, source, entities, spec, ctx, cp, progress);
    for (const r of ids)
      rows.push({
        entity: r.entity.key,
        subject: r.entity.subject,
        type: r.entity.type,
        condition: 'identify',
        relation: null,
        question: null,
        generation: r.text,
        correct: r.identified,
        correctPopvqa: r.identified,
        correctAlias: r.identified,
      });
    keep = new Set(ids.filter((r) => r.identified).map((r) => r.entity.key));
    identifiedCount = keep.size;
    ctx.onPartial?.(rows);
  }
  let answers = await answerQuestions(model, source, keep, spec, ctx, progress, cp);
  ctx.onPartial?.(answers);
  const bb = resolveBackbone(model, spec, ctx);
  let backboneRows: AnswerRow[] = [];
  const warnings: string[] = [...(bb?.warnings ?? [])];
  if (bb) {
    try {
      const es = source.entities({ types: spec.types }).filter((e) => keep.has(e.key));
      const cases = es.flatMap((e) => source.questions(e, 'image').flatMap((q) => source.backbonePrompt(q, bb.model, { template: spec.backboneTemplate ?? 'plain' }) ?? []));
      const gens = await generateCached(bb.model, backboneSource(source, bb.model), cases, { maxNewTokens: spec.maxNewTokens, batchSize: spec.batchSize, tag: 'qa-backbone' }, ctx, cp, progress);
      backboneRows = cases.map((c) => answerRow(c, 'backbone', gens.get(c.id)!.text, spec.match));
      ctx.onPartial?.(backboneRows);
    } finally {
      bb.release();
    }
    // The same entity set for the three conditions: those the backbone answered too.
    const answered = new Set(backboneRows.map((r) => r.entity));
    const dropped = new Set(answers.filter((r) => !answered.has(r.entity)).map((r) => r.entity));
    if (dropped.size) warnings.push(`recall-gap: ${dropped.size} entities have no backbone prompt and are left out of every condition`);
    answers = answers.filter((r) => answered.has(r.entity));
  }
  rows.push(...answers, ...backboneRows);
  const main = gapSummary(answers, spec.match);
  const alt = gapSummary(answers, otherRule(spec.match));
  const { comparison: _c, ...headline } = main;
  const { comparison: _a, view: _v, ...alternative } = alt;
  const bench = bb ? backboneBenchmark([...answers, ...backboneRows], spec.match) : null;
  return {
    kind: spec.kind,
    spec,
    table: makeTable(rows),
    summary: {
      answer: `${bench ? `backbone ${Number(bench.backboneAcc).toFixed(3)} / ` : ''}text ${Number(headline.textAcc).toFixed(3)} / image ${Number(headline.imageAcc).toFixed(3)}`,
      ...headline,
      backboneAcc: bench ? bench.backboneAcc : null,
      backbone: bench ? { from: bb!.from, template: spec.backboneTemplate ?? 'plain', ...bench } : null,
      entitiesTried: entities.length,
      identified: identifiedCount,
      // (entity, question) pairs asked, each in text and image form (after the spec's `questions` filter).
      questions: answers.filter((r) => r.condition === 'text').length,
      alternative,
      protocol: protocolSummary(source, spec, {
        entities,
        prefix: false,
        maxNewTokens: { identify: spec.identify ? spec.identifyTokens : null, answer: spec.maxNewTokens, patch: null },
        wilcoxon: true,
      }),
      warnings,
    },
  };
}

type Cond = 'backbone' | 'text' | 'image';

/**
 * Backbone vs VLM-text vs VLM-image on one entity set: accuracies (per entity, then over entities),
 * degradation backbone − image (absolute and relative to the backbone), and the paired Wilcoxon test for
 * each pair of conditions, overall and per type.
 */
export function backboneBenchmark(rows: readonly AnswerRow[], match: SpecBase['match']) {
  const field = match === 'alias' ? 'correctAlias' : 'correctPopvqa';
  const recs = (c: Cond, type?: string) => records(rows, c, field).filter((r) => type === undefined || r.type === type);
  const pairs: [Cond, Cond][] = [
    ['backbone', 'text'],
    ['backbone', 'image'],
    ['text', 'image'],
  ];
  const block = (type?: string) => {
    const cmp = pairs.map(([a, b]) => [`${a}-${b}`, compareConditions(recs(a, type), recs(b, type))] as const);
    const acc = (c: Cond) => {
      const hit = cmp.find(([k]) => k.startsWith(`${c}-`)) ?? cmp.find(([k]) => k.endsWith(`-${c}`))!;
      return hit[0].startsWith(`${c}-`) ? hit[1].text : hit[1].image;
    };
    const backboneAcc = acc('backbone').mean;
    const imageAcc = acc('image').mean;
    return {
      n: acc('backbone').nEntities,
      backboneAcc,
      textAcc: acc('text').mean,
      imageAcc,
      degradation: { absolute: backboneAcc - imageAcc, relative: backboneAcc > 0 ? (backboneAcc - imageAcc) / backboneAcc : null },
      wilcoxon: Object.fromEntries(cmp.map(([k, c]) => [k, { diff: c.drop.mean, pValue: Number.isFinite(c.wilcoxon.pValue) ? c.wilcoxon.pValue : null, n: c.wilcoxon.n, method: c.wilcoxon.method }])),
    };
  };
  const types = [...new Set(rows.map((r) => r.type))].sort();
  return { ...block(), byType: Object.fromEntries(types.map((t) => [t, block(t)])) };
}
