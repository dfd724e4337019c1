// The evaluation of a teaching model: the numbers it is judged by (issue 15), measured with the library's own
// experiments (a list of specs run through runExperiment, nothing re-implemented) on held-out pairs and
// unseen views: identification, the recall gap against the text question and the backbone, the answer prior,
// the entity-resolution layer from leak-free probes, the cross-patching switch layer, backbone → VLM
// patching, chain of thought, and the recall circuit against the backbone's. `src/train/cli.ts --eval` runs
// it on the folder it has just written.
//   node --import tsx src/train/contrast.ts --model data/teaching/late [--data data/toyworld] [--limit 48] [--out f.json]
//     [--only recall-gap,probe,...] [--all-entities]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { parse } from 'csv-parse/sync';
import { initEngine, shutdownEngine } from '../engine/backend';
import { backboneDirOf, loadModelWithAssets, runExperiment, type ExperimentKind, type ResultOf, type SpecInput } from '../experiments';
import { COT_SUFFIX, HELDOUT_QUESTIONS, TOYWORLD_BACKBONE_TEMPLATE } from '../data/toyworld';
import { TEACHING_MODELS, teachingModelDir } from '../data/teaching-models';
import type { ProbeSummary } from '../experiments/probe';
import { siteCount } from '../experiments/circuit-sites';

export interface ContrastOptions {
  model: string;
  data: string;
  /** Entities sampled (seeded) for the question-answering experiments. */
  limit: number;
  only?: string[];
  /**
   * Ask the factual questions of every sampled entity, identified from the image or not (recall-gap
   * `identify: false`, cross-patch and recovery `identifiedOnly: false`): hop 2 measured without hop 1's filter.
   */
  allEntities?: boolean;
  log?: (s: string) => void;
}

/** The best constant answer per relation on the held-out pairs: the accuracy a model reaches without the entity. */
export function answerPrior(dataDir: string): number {
  const rows = parse(fs.readFileSync(path.join(dataDir, 'questions.csv'), 'utf8'), { columns: true, bom: true }) as Record<string, string>[];
  const held = rows.filter((r) => r.vqa_split === 'heldout');
  const byRel = new Map<string, Map<string, number>>();
  for (const r of held) {
    const m = byRel.get(r.relation) ?? new Map<string, number>();
    m.set(r.possible_answers, (m.get(r.possible_answers) ?? 0) + 1);
    byRel.set(r.relation, m);
  }
  let best = 0;
  for (const m of byRel.values()) best += Math.max(...m.values());
  return held.length ? best / held.length : NaN;
}

/**
 * Hop 1's timing as this report measures it (and test/data/teaching-contrast.test.ts checks): per layer, a probe fit
 * on text and read on the image (transfer), resolved at 90 % of each curve's own best, with the bootstrap interval.
 */
export function resolutionProbeSpec(limit: number, position: 'last' | 'last-image') {
  return { kind: 'probe', limit, position, modality: 'both', transfer: true, threshold: 0.9, thresholdOf: 'peak' } as const;
}

export async function contrast(o: ContrastOptions): Promise<Record<string, unknown>> {
  const model = loadModelWithAssets(o.model);
  const out: Record<string, unknown> = { model: o.model, layers: model.numLayers, answerPrior: answerPrior(o.data) };
  const backbone = backboneDirOf(o.model);
  const hasBackbone = backbone !== null;
  // Typed by kind (ResultOf): the summaries' fields are read as the experiments define them.
  const run = async <K extends ExperimentKind>(spec: SpecInput<K>): Promise<ResultOf<K> | null> => {
    if (o.only && !o.only.includes(spec.kind)) return null;
    const t = performance.now();
    const r = await runExperiment<K>({ version: 1, ...spec }, { model, data: o.data });
    o.log?.(`${spec.kind} ${((performance.now() - t) / 1000).toFixed(1)} s`);
    return r;
  };
  try {
    const all = o.allEntities ? { identify: false } : {};
    const allPairs = o.allEntities ? { identifiedOnly: false } : {};
    out.allEntities = o.allEntities ?? false;
    const gap = await run({ kind: 'recall-gap', limit: o.limit, ...all, questions: HELDOUT_QUESTIONS, backbone: hasBackbone ? backbone : null, backboneTemplate: TOYWORLD_BACKBONE_TEMPLATE });
    if (gap) {
      const s = gap.summary;
      // Identification = hop 1 alone: the share of sampled entities named from an unseen view.
      const identification = s.identified !== null && s.entitiesTried ? s.identified / s.entitiesTried : null;
      out.recallGap = { entitiesTried: s.entitiesTried, identified: s.identified, identification, entities: s.entities, backboneAcc: s.backboneAcc, textAcc: s.textAcc, imageAcc: s.imageAcc, drop: s.drop, pValue: s.pValue };
      out.recallGapSummary = s;
    }
    for (const position of ['last', 'last-image'] as const) {
      // transfer: the image read by the probe fit on text, where the image holds the entity as the LM's text run does.
      // The first layer at 90 % of each curve's own best: the transfer curves of the teaching models peak far below
      // any one accuracy threshold. The probe's bootstrap gives each layer, and the lag, a 95 % interval.
      const probe = await run(resolutionProbeSpec(o.limit * 2, position));
      if (probe) {
        const s = probe.summary;
        out[`probe:${position}`] = {
          curves: { text: s.text, image: s.image, transfer: s.transfer },
          textResolved: s.resolution.text,
          imageResolved: s.resolution.image,
          transferResolved: s.resolution.transfer,
          intervals: s.resolutionCI,
          summary: s,
        };
      }
    }
    // Hop 1's timing, both modalities at the entity's own last token (the subject's last token in the text
    // prompt, the last image token in the image prompt): the layer where the image reads as the name (the
    // transfer probe) against the layer where the written name does. At the last prompt token the transfer
    // probe reads ~0 on every teaching model (data/teaching/README.md), so it has no layer to compare.
    const atEntity = out['probe:last-image'] as { textResolved: number | null; transferResolved: number | null; intervals: ProbeSummary['resolutionCI'] } | undefined;
    if (atEntity)
      out.resolution = {
        position: 'entity-last',
        text: atEntity.textResolved,
        image: atEntity.transferResolved,
        imageLater: atEntity.textResolved !== null && atEntity.transferResolved !== null ? atEntity.transferResolved - atEntity.textResolved : null,
        // The lag's 95 % interval over the same entity draws for both curves.
        imageLaterCI: atEntity.intervals?.lag.transfer ?? null,
      };
    const cp = await run({ kind: 'cross-patch', limit: Math.max(8, Math.round(o.limit / 3)), ...allPairs });
    if (cp) out.crossPatch = { switchLayer: cp.summary.switchLayer, summary: cp.summary };
    // Chain of thought in toyworld's own wording, the one the teaching VLMs were tuned on (as `hopscope demo` asks it).
    const rec = await run({ kind: 'recovery', limit: Math.max(8, Math.round(o.limit / 2)), ...allPairs, cotSuffix: { ...COT_SUFFIX }, questions: HELDOUT_QUESTIONS, backbone: hasBackbone ? backbone : null, backboneTemplate: TOYWORLD_BACKBONE_TEMPLATE });
    if (rec) out.recovery = rec.summary;
    if (hasBackbone) {
      // The recall circuit: the backbone's top-10 sites in its text run, looked for among the VLM's image-run sites,
      // by attribution and, every site re-measured by exact patching (`summary.exact`), by measured effect.
      const circuit = await run({ kind: 'circuit', limit: o.limit, topK: siteCount(model.numLayers), backbone, backboneTemplate: TOYWORLD_BACKBONE_TEMPLATE, questions: HELDOUT_QUESTIONS });
      if (circuit) {
        const s = circuit.summary;
        out.circuit = { pairs: s.pairs, overlapImage: s.comparisons['backbone-text~vlm-image'].overlap, overlapText: s.comparisons['backbone-text~vlm-text'].overlap, recall: s.recall, exact: s.exact, top: s.top };
      }
    }
  } finally {
    model.dispose();
  }
  return out;
}

async function main(): Promise<void> {
  // commander, as the hopscope CLI: `--help` prints the options and an unknown flag is an error.
  const o = new Command('contrast')
    .description("a teaching model's evaluation (issue 15's numbers) as JSON")
    .option('--model <dir>', `the VLM folder, or a teaching model's name (${Object.keys(TEACHING_MODELS).join(', ')})`, 'teaching')
    .option('--data <dir>', 'the toyworld data', 'data/toyworld')
    .option('--limit <n>', 'entities per experiment', '48')
    .option('--only <kinds>', 'comma-separated parts (recall-gap, probe, ...)')
    .option('--all-entities', 'ask every entity, not only those with held-out pairs')
    .option('--out <file>', 'also write the JSON there')
    .parse()
    .opts<{ model: string; data: string; limit: string; only?: string; allEntities?: boolean; out?: string }>();
  const limit = Number(o.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`--limit ${o.limit}: expected a positive integer`);
  await initEngine();
  const r = await contrast({
    model: teachingModelDir(o.model),
    data: o.data,
    limit,
    only: o.only?.split(','),
    allEntities: o.allEntities === true,
    log: (s) => console.error(s),
  });
  const json = JSON.stringify(r, null, 1);
  if (o.out) fs.writeFileSync(o.out, json);
  console.log(json);
  shutdownEngine();
}

if (require.main === module)
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
