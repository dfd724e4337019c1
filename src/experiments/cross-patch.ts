// cross-patch (Cohen et al. 2024 §5): target entity B shown as an image with the identification prompt;
// at one layer l the inputs of block l at the image positions are replaced by donor A's (cached from
// A's own clean run); greedy generation then names the target, the donor, or neither. The switch
// layer is where predictions flip from donor to target (LLaVA-1.5-7B ≈ 20).
import type { Selector } from '../interventions/selectors';
import type { Site } from '../interventions/types';
import type { Model } from '../models/model';
import type { Row } from './checkpoint';
import { Progress, Warnings, identify, makeTable, names, openCheckpoint, type ExperimentContext, sweepContext } from './context';
import { untilEos, eosSet } from './greedy';
import { cleanStates, sweep, type PatchJob } from './scheduler';
import { prepareSource } from './sources/dataset';
import { patchPrefixOn, protocolSummary, type PatchPrefix } from './protocol';
import { layersOf, selectRows, type SpecBase } from './spec';
import type { EntityRef, PromptCase, PromptSource } from './source';
import { crossPatchView, switchCurves } from './views';

export interface CrossPatchSpec extends SpecBase {
  kind: 'cross-patch';
  layers: number[] | null;
  donors: 'same' | 'cross' | 'mixed';
  donorsPerTarget: number;
  identifiedOnly: boolean;
  site: Site;
  at: Selector | string;
  maxNewTokens: number;
  identifyTokens?: number;
  patchPrefix?: PatchPrefix;
  crossTypePrompt?: 'generic' | 'target';
}

/** Donors of a target: same-type ones, the first of each other type, or the paper's mix of both. */
export function donorsFor(target: EntityRef, pool: readonly EntityRef[], mode: CrossPatchSpec['donors'], n: number): EntityRef[] {
  const same = pool.filter((e) => e !== target && e.type === target.type);
  const firstOfOtherTypes: EntityRef[] = [];
  for (const e of pool) if (e.type !== target.type && !firstOfOtherTypes.some((x) => x.type === e.type)) firstOfOtherTypes.push(e);
  if (mode === 'same') return same.slice(0, n);
  if (mode === 'cross') return firstOfOtherTypes.slice(0, n);
  const cross = firstOfOtherTypes.slice(0, n);
  return [...same.slice(0, Math.max(0, n - cross.length)), ...cross];
}

/** The summary `crossPatch` builds, typed from its code (runExperiment's result is typed by kind from these). */
export type CrossPatchSummary = Awaited<ReturnType<typeof crossPatch>>['summary'];

export async function crossPatch(model: Model, source: PromptSource, spec: CrossPatchSpec, ctx: ExperimentContext = {}) {
  const progress = new Progress(ctx);
  const cp = openCheckpoint(ctx, spec);
  const warnings = new Warnings();
  const layers = layersOf(spec, model.numLayers);
  const entities = source.entities({ types: spec.types, limit: spec.limit, seed: spec.seed });
  await prepareSource(source, entities);
  // Identification as the authors' identify.py (no prefix, 20 tokens); the patching prompts as
  // cross_patch.py:91-97: the type's query with its prefix, or the generic one when the types differ.
  let pool: EntityRef[];
  if (spec.identifiedOnly) {
    const ids = await identify(model, source, entities, { ...spec, identifyTokens: spec.identifyTokens ?? 20 }, ctx, cp, progress);
    pool = ids.filter((r) => r.identified).map((r) => r.entity);
  } else pool = entities.filter((e) => source.identification(e));
  const prefix = patchPrefixOn(spec.patchPrefix, source.template);
  const generic = (spec.crossTypePrompt ?? 'generic') === 'generic';
  const promptFor = (e: EntityRef, cross: boolean) => source.identification(e, { prefix, generic: cross && generic })!;
  const imageLen = (c: PromptCase) => c.spans.images.map((s) => s.length).join(',');
  let pairs: { target: EntityRef; donor: EntityRef; prompt: PromptCase; donorPrompt: PromptCase }[] = [];
  for (const target of pool)
    for (const donor of donorsFor(target, pool, spec.donors, spec.donorsPerTarget)) {
      // The donor's states come from its own run on its type's prompt (cross_patch.py:70-71).
      const prompt = promptFor(target, donor.type !== target.type);
      const donorPrompt = promptFor(donor, false);
      if (imageLen(prompt) !== imageLen(donorPrompt)) {
        warnings.add([`pair ${donor.subject} -> ${target.subject} skipped: image spans differ in length (${imageLen(donorPrompt)} vs ${imageLen(prompt)})`]);
        continue;
      }
      pairs.push({ target, donor, prompt, donorPrompt });
    }
  pairs = selectRows(spec, pairs, 'donor-target pairs');
  const prompts = [...new Map(pairs.flatMap((p) => [p.prompt, p.donorPrompt]).map((c) => [c.id, c])).values()];
  const clean = await cleanStates(model, source, prompts, spec.batchSize);
  const eos = eosSet(model);
  try {
    const jobs: PatchJob[] = [];
    for (const [pi, { target, donor, prompt, donorPrompt }] of pairs.entries()) {
      const t = clean.where.get(prompt.id)!;
      const d = clean.where.get(donorPrompt.id)!;
      for (const l of layers)
        jobs.push({
          key: `${target.key}|${donor.key}|${l}`,
          clean: t.clean,
          row: t.row,
          generate: spec.maxNewTokens,
          interventions: [{ kind: 'patch', layers: [l], site: spec.site, at: spec.at, source: { cache: 'donor', row: d.row } }],
          sources: { donor: d.clean.source },
          meta: { pair: pi, target, donor, layer: l },
        });
    }
    progress.start('sweep', jobs.length);
    const rows = await sweep(model, jobs, {
      ...sweepContext(spec, ctx, cp, progress, warnings),
      toRows: (out) => {
        const m = out.job.meta as { pair: number; target: EntityRef; donor: EntityRef; layer: number };
        const text = source.decode(untilEos(out.newTokens ?? [], eos));
        return [
          {
            pair: m.pair,
            target: m.target.subject,
            targetType: m.target.type,
            donor: m.donor.subject,
            donorType: m.donor.type,
            sameType: m.target.type === m.donor.type,
            layer: m.layer,
            generation: text,
            namesTarget: names(text, m.target, spec.match),
            namesDonor: names(text, m.donor, spec.match),
          },
        ];
      },
    });
    const protocol = protocolSummary(source, spec, {
      entities: pool,
      prefix,
      generic,
      maxNewTokens: { identify: spec.identifiedOnly ? spec.identifyTokens ?? 20 : null, answer: null, patch: spec.maxNewTokens },
      extra: { crossTypePrompt: spec.crossTypePrompt ?? 'generic', patchPrefix: spec.patchPrefix ?? 'authors' },
    });
    return { kind: spec.kind, spec, table: makeTable(rows), summary: { ...summarize(spec, rows, layers, pairs, warnings.list(), pool.length, entities.length), protocol } };
  } finally {
    clean.dispose();
  }
}

function summarize(spec: CrossPatchSpec, rows: Row[], layers: number[], pairs: readonly unknown[], warnings: string[], poolSize: number, tried: number) {
  // The figure and the numbers are one computation (views.ts): the live view of a running sweep is the same.
  const view = crossPatchView({ spec: { ...spec, layers }, rows, summary: {} });
  return {
    answer: rows.length ? String(rows[0].generation) : null,
    entitiesTried: tried,
    pool: poolSize,
    pairs: pairs.length,
    layers,
    ...switchCurves(rows, layers),
    sameType: switchCurves(rows.filter((r) => r.sameType), layers),
    crossType: switchCurves(rows.filter((r) => !r.sameType), layers),
    pairSwitchLayers: (view?.pairs ?? []).map((p) => ({ donor: p.donor, target: p.target, switchLayer: p.switchLayer ?? null })),
    warnings,
    view,
  };
}
