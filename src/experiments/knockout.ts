// knockout (Geva et al. 2023; Neo et al. 2024; Kaduri et al. 2024): attention edges "A->B" (queries at B
// may not attend to keys at A) blocked in a window of w layers centred on l, in fixed bands, or from
// layer k to the end. Metric: relative change of the original top-1 answer token's probability at the
// last prompt position, (p_new − p_base)/p_base, and (optionally) the accuracy of the generated answer.
import { InputError } from '../errors';
import { toSelector, type Selector } from '../interventions/selectors';
import type { Model } from '../models/model';
import type { Row } from './checkpoint';
import { Progress, Warnings, answerCorrect, makeTable, names, openCheckpoint, type ExperimentContext, sweepContext, identifiedPool } from './context';
import { eosSet, untilEos } from './greedy';
import { cleanStates, sweep, type PatchJob } from './scheduler';
import { prepareSource } from './sources/dataset';
import { protocolSummary } from './protocol';
import { layersOf, selectRows, type SpecBase } from './spec';
import { scopeQuestions, type Modality, type PromptCase, type PromptSource } from './source';
import { entityAccuracy, knockoutCells, knockoutMap } from './views';

type EdgeName = 'image->last' | 'image->query' | 'entity->last' | 'last->last';
export interface EdgeSet {
  name: string;
  from: Selector | string;
  to: Selector | string;
  /** Prompts the edge set applies to. */
  modalities: Modality[];
}

export interface KnockoutExperimentSpec extends SpecBase {
  kind: 'knockout';
  layers: number[] | null;
  window: number;
  bands: [number, number][] | null;
  fromLayer: number | null;
  edges: (EdgeName | { name: string; from: Selector | string; to: Selector | string })[];
  heads: number[] | null;
  prompts: 'questions' | 'identification';
  /** Identification prompts end with the answer prefix, so the measured token is the name's first (schemas/common.json). */
  answerPrefix: boolean;
  modality: Modality | 'both';
  identifiedOnly: boolean;
  accuracy: boolean;
  maxNewTokens: number;
  identifyTokens?: number;
}

/** The named edge sets. image->query covers every prompt token after the image and the generated tokens. */
export function edgeSet(e: KnockoutExperimentSpec['edges'][number]): EdgeSet {
  if (typeof e !== 'string') return { name: e.name, from: e.from, to: e.to, modalities: ['image', 'text'] };
  switch (e) {
    case 'image->last':
      return { name: e, from: 'image', to: 'last', modalities: ['image'] };
    case 'image->query':
      return { name: e, from: 'image', to: { kind: 'union', of: [{ kind: 'after-image' }, { kind: 'generated' }] }, modalities: ['image'] };
    case 'entity->last':
      return { name: e, from: 'subject', to: 'last', modalities: ['text'] };
    case 'last->last':
      return { name: e, from: 'last', to: 'last', modalities: ['image', 'text'] };
    default:
      throw new InputError(`unknown edge set ${JSON.stringify(e)}`);
  }
}

/** Layer sets to block, each with the label of its column (window centre, band "a-b", or "k-end"). */
export function layerSets(spec: KnockoutExperimentSpec, numLayers: number): { label: number | string; centre: number; layers: number[] }[] {
  const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
  if (spec.bands) {
    return spec.bands.map(([a, b], i) => {
      if (a > b || b >= numLayers) throw new InputError(`knockout: bands[${i}] = [${a}, ${b}] must satisfy from <= to < ${numLayers}`);
      return { label: `${a}-${b}`, centre: Math.round((a + b) / 2), layers: range(a, b) };
    });
  }
  if (spec.fromLayer !== null) {
    if (spec.fromLayer >= numLayers) throw new InputError(`knockout: fromLayer ${spec.fromLayer} must be below ${numLayers}`);
    return [{ label: `${spec.fromLayer}-end`, centre: spec.fromLayer, layers: range(spec.fromLayer, numLayers - 1) }];
  }
  const half = Math.floor(spec.window / 2);
  return layersOf(spec, numLayers).map((l) => ({ label: l, centre: l, layers: range(Math.max(0, l - half), Math.min(numLayers - 1, l + half)) }));
}

function softmaxAt(logits: Float32Array, token: number): number {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return Math.exp(logits[token] - max) / sum;
}

function argmax(v: Float32Array): number {
  let b = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[b]) b = i;
  return b;
}

/** One line for a clicked cell: the first knocked-out run's probability change and answer. */
function answerOf(rows: readonly Row[]): string | null {
  const r = rows.find((x) => x.edges !== 'none');
  if (!r) return null;
  const rel = Number(r.relChange);
  return `${r.edges} @ ${r.window}: Δp/p = ${rel.toFixed(3)}${r.generation !== null ? `, answer "${r.generation}"` : ''}`;
}

/** The summary `knockoutExperiment` builds, typed from its code (runExperiment's result is typed by kind from these). */
export type KnockoutSummary = Awaited<ReturnType<typeof knockoutExperiment>>['summary'];

export async function knockoutExperiment(model: Model, source: PromptSource, spec: KnockoutExperimentSpec, ctx: ExperimentContext = {}) {
  source = scopeQuestions(source, spec.questions);
  const progress = new Progress(ctx);
  const cp = openCheckpoint(ctx, spec);
  const warnings = new Warnings();
  const sets = layerSets(spec, model.numLayers);
  let edges = spec.edges.map(edgeSet);
  edges = selectRows(spec, edges, 'edge sets');
  // Fail on a bad selector name before any compute.
  for (const e of edges) [e.from, e.to].forEach((s) => toSelector(s));
  const modalities: Modality[] = spec.modality === 'both' ? ['image', 'text'] : [spec.modality];
  const entities = source.entities({ types: spec.types, limit: spec.limit, seed: spec.seed });
  // Text prompts on every entity need no image, so that run also works on a text-only LLM: a VLM's backbone, whose
  // own subject -> last reading is what the VLM's image path is compared with (data/teaching/README.md, session 20).
  if (modalities.includes('image') || spec.identifiedOnly) await prepareSource(source, entities);
  const pool = await identifiedPool(model, source, entities, spec, ctx, cp, progress);
  const prompts: PromptCase[] = [];
  for (const e of pool)
    for (const m of modalities) {
      if (spec.prompts === 'identification') {
        // With the prefix the base answer token is the name's first, not "The" (whose probability no edge moves).
        const p = m === 'image' ? source.identification(e, { prefix: spec.answerPrefix }) : source.naming(e);
        if (p) prompts.push(p);
      } else prompts.push(...source.questions(e, m));
    }
  const clean = await cleanStates(model, source, prompts, spec.batchSize);
  const eos = eosSet(model);
  const score = (c: PromptCase, text: string) => (spec.prompts === 'identification' && c.modality === 'image' ? names(text, c.entity, spec.match) : answerCorrect(text, c, spec.match));
  let rows: Row[];
  try {
    const jobs: PatchJob[] = [];
    for (const c of prompts) {
      const w = clean.where.get(c.id)!;
      const base = w.clean.lastLogits[w.row];
      const answer = argmax(base);
      const pBase = softmaxAt(base, answer);
      const common = { prompt: c.id, entity: c.entity.key, type: c.entity.type, modality: c.modality, relation: c.relation ?? null, answerToken: answer, pBase };
      if (spec.accuracy)
        jobs.push({ key: `${c.id}|base`, clean: w.clean, row: w.row, generate: spec.maxNewTokens, interventions: [], meta: { c, common, edge: null, set: null } });
      for (const e of edges) {
        if (!e.modalities.includes(c.modality)) continue;
        if (e.from === 'subject' && !c.spans.subject) {
          warnings.add([`${e.name} skipped on prompts without a recorded entity span (${c.id})`]);
          continue;
        }
        for (const s of sets)
          jobs.push({
            key: `${c.id}|${e.name}|${s.label}`,
            clean: w.clean,
            row: w.row,
            generate: spec.accuracy ? spec.maxNewTokens : 0,
            interventions: [{ kind: 'knockout', layers: s.layers, heads: spec.heads ?? undefined, from: e.from, to: e.to }],
            meta: { c, common, edge: e.name, set: s },
          });
      }
    }
    progress.start('sweep', jobs.length);
    rows = await sweep(model, jobs, {
      ...sweepContext(spec, ctx, cp, progress, warnings),
      toRows: (out) => {
        const m = out.job.meta as { c: PromptCase; common: Row & { answerToken: number; pBase: number }; edge: string | null; set: { label: number | string; centre: number; layers: number[] } | null };
        const pNew = softmaxAt(out.lastLogits, m.common.answerToken);
        const text = out.newTokens ? source.decode(untilEos(out.newTokens, eos)) : null;
        return [
          {
            ...m.common,
            edges: m.edge ?? 'none',
            window: m.set ? m.set.label : null,
            centre: m.set ? m.set.centre : null,
            fromLayer: m.set ? m.set.layers[0] : null,
            toLayer: m.set ? m.set.layers[m.set.layers.length - 1] : null,
            pNew,
            relChange: (pNew - m.common.pBase) / m.common.pBase,
            generation: text,
            correct: text === null ? null : score(m.c, text),
          },
        ];
      },
    });
  } finally {
    clean.dispose();
  }
  // The numbers are the figure's (views.ts), so the live view of a running sweep and the final one agree.
  // Accuracy as everywhere else in the papers: per entity first, then the mean over entities.
  const cells = knockoutCells(spec, rows);
  const baseAcc = spec.accuracy ? entityAccuracy(rows.filter((r) => r.edges === 'none')) : null;
  return {
    kind: spec.kind,
    spec,
    table: makeTable(rows),
    summary: {
      answer: answerOf(rows),
      entities: pool.length,
      prompts: prompts.length,
      edgeSets: cells.edges,
      windows: cells.windows,
      relChange: cells.relChange,
      accuracy: cells.accuracy,
      baselineAccuracy: baseAcc,
      protocol: protocolSummary(source, spec, {
        entities: pool,
        prefix: spec.prompts === 'identification' && spec.answerPrefix,
        maxNewTokens: { identify: spec.identifiedOnly ? spec.identifyTokens ?? 20 : null, answer: spec.accuracy ? spec.maxNewTokens : null, patch: null },
        extra: { accuracy: 'per entity, then mean over entities' },
      }),
      warnings: warnings.list(),
      view: knockoutMap(spec, cells),
    },
  };
}
