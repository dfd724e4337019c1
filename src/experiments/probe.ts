// probe: per layer, a linear (multinomial logistic-regression) probe predicts entity identity (or an
// attribute) from the residual at one position, trained on some images and tested on held-out ones.
// Resolution layer = first layer whose held-out accuracy reaches the threshold; image vs text prompts
// show where the entity resolves in each modality ("Too Late to Recall").
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../errors';
import { resolveSelector, type Selector } from '../interventions/selectors';
import type { Model } from '../models/model';
import { batchesOf, makeBatch } from './batch';
import type { Row } from './checkpoint';
import { Progress, Warnings, makeTable, type ExperimentContext } from './context';
import { accuracy, fitLogReg } from './logreg';
import { checkImageIdentityProbe, dedupePrompts, describeSplit, splitByGroup, type ProbeSplit } from './probe-split';
import { prepareSource } from './sources/dataset';
import { protocolSummary } from './protocol';
import { resolutionLayer, type ThresholdOf } from './resolution';
import { bootstrapResolution, type Hits } from './resolution-ci';
import { layersOf, type SpecBase } from './spec';
import { scopeQuestions, type EntityRef, type Modality, type PromptCase, type PromptSource } from './source';
import { probeView } from './views';

export interface ProbeSpec extends SpecBase {
  kind: 'probe';
  layers: number[] | null;
  position: 'last-image' | 'last' | 'mean-image';
  target: string;
  threshold: number;
  modality: Modality | 'both';
  testFraction: number;
  l2: number;
  iterations: number;
  learningRate: number;
  /**
   * Also fit each layer's probe on every text prompt and score it on every image prompt (rows "transfer"): the
   * image's residual decodes as the entity only where it holds the entity the way the LM's text run does. A
   * per-modality image probe can read any features that tell entities apart (a trained vision tower's, from the
   * first layer on); the transfer probe reads whether hop 1 has resolved into the LM's own representation.
   */
  transfer: boolean;
  /** What `threshold` is a share of: held-out accuracy ('accuracy') or the curve's own best ('peak'). */
  thresholdOf: ThresholdOf;
  /** Cluster-bootstrap draws over the held-out entities for the resolution layers' 95 % intervals (0: none). */
  bootstrap: number;
}

/** Where the residual is read, per modality (on text prompts the entity's tokens stand in for the image). */
export function probeSelector(position: ProbeSpec['position'], modality: Modality): { sel: Selector; mean: boolean } {
  if (position === 'last') return { sel: { kind: 'last' }, mean: false };
  if (modality === 'image') return position === 'last-image' ? { sel: { kind: 'image-last' }, mean: false } : { sel: { kind: 'image' }, mean: true };
  return position === 'last-image' ? { sel: { kind: 'subject', last: true }, mean: false } : { sel: { kind: 'subject' }, mean: true };
}

function labelOf(e: EntityRef, target: string): string {
  if (target === 'entity') return e.key;
  if (target === 'type') return e.type;
  const v = e.extra[target];
  if (v === undefined) throw new InputError(`probe: target "${target}" is not "entity", "type" or a column of the entities (columns: ${Object.keys(e.extra).join(', ')})`);
  return v;
}

/**
 * Examples of one modality, each distinct prompt once: image views when the data has several images per
 * entity, else the identification prompt and the image questions (all on the entity's one image, which
 * `splitByGroup` keeps on one side); text prompts naming the entity.
 */
function examplesOf(source: PromptSource, es: EntityRef[], modality: Modality): PromptCase[] {
  if (modality === 'image') {
    const views = es.flatMap((e) => source.views(e));
    const images = new Map<string, Set<string>>();
    for (const v of views) if (v.image) images.set(v.entity.key, (images.get(v.entity.key) ?? new Set()).add(v.image));
    if ([...images.values()].every((s) => s.size < 2)) return [...views, ...es.flatMap((e) => source.questions(e, 'image'))];
    return views;
  }
  return es.flatMap((e) => {
    const n = source.naming(e);
    return [...(n ? [n] : []), ...source.questions(e, 'text').filter((q) => q.spans.subject)];
  });
}

/** Train/test split (kept for callers): the data's own (views) when given, else a seeded split over groups stratified by label. */
export function splitExamples(cases: PromptCase[], labels: string[], testFraction: number, seed: number): boolean[] {
  return splitByGroup(cases, labels, testFraction, seed).isTest;
}

/** Residual features [layer] → Float32Array (n × D) at the probe position of every example. */
async function features(model: Model, source: PromptSource, cases: PromptCase[], layers: number[], sel: { sel: Selector; mean: boolean }, batchSize: number, ctx: ExperimentContext, progress: Progress): Promise<Map<string, Float32Array[]>> {
  const D = model.dModel;
  const out = new Map<string, Float32Array[]>();
  for (const group of batchesOf(cases, batchSize)) {
    ctx.signal?.throwIfAborted();
    const batch = await makeBatch(model, source, group);
    const run = model.forward(batch.inputs, { cache: layers.map((l) => `lm.blocks.${l}.resid_post`), stopLayer: Math.max(...layers) + 1 });
    try {
      const perLayer = layers.map((l) => {
        const h = run.cache.get(`lm.blocks.${l}.resid_post`)!;
        const T = h.shape[1] as number;
        const t = tf.tidy(() =>
          tf.concat(
            batch.rows.map((g, b) => {
              const ps = resolveSelector(sel.sel, g).prompt;
              if (ps.length === 0) throw new InputError(`probe: prompt ${group[b].id} has no position for the probe`);
              const v = tf.gather(h.reshape([-1, D]), tf.tensor1d(ps.map((p) => b * T + p), 'int32'));
              return sel.mean ? tf.mean(v, 0, true) : v.slice([ps.length - 1, 0], [1, D]);
            }),
            0,
          ),
        );
        const d = t.dataSync() as Float32Array;
        t.dispose();
        return d;
      });
      group.forEach((c, b) => out.set(c.id, perLayer.map((d) => d.slice(b * D, (b + 1) * D))));
    } finally {
      run.dispose();
      batch.dispose();
    }
    progress.tick(group.length);
    await new Promise((r) => setImmediate(r));
  }
  return out;
}

/** The summary `probeExperiment` builds, typed from its code (runExperiment's result is typed by kind from these). */
export type ProbeSummary = Awaited<ReturnType<typeof probeExperiment>>['summary'];

export async function probeExperiment(model: Model, source: PromptSource, spec: ProbeSpec, ctx: ExperimentContext = {}) {
  source = scopeQuestions(source, spec.questions);
  const progress = new Progress(ctx);
  const warnings = new Warnings();
  const layers = layersOf(spec, model.numLayers);
  const entities = source.entities({ types: spec.types, limit: spec.limit, seed: spec.seed });
  await prepareSource(source, entities);
  let modalities: Modality[] = spec.modality === 'both' ? ['image', 'text'] : [spec.modality];
  if (spec.rows) modalities = spec.rows.map((i) => (['image', 'text'] as const)[i]).filter(Boolean);
  const rows: Row[] = [];
  const D = model.dModel;
  // Features and labels per modality, kept for the transfer probe (text → image).
  const kept: Partial<Record<Modality, { cases: PromptCase[]; labels: string[]; feats: Map<string, Float32Array[]> }>> = {};
  const split: Partial<Record<Modality, ProbeSplit>> = {};
  // Per modality (and transfer), which held-out example each layer's probe gets right: the bootstrap's input.
  const hits: Record<string, Hits> = {};
  const refused: Partial<Record<Modality, string>> = {};
  for (const modality of modalities) {
    const all = examplesOf(source, entities, modality);
    const cases = dedupePrompts(all);
    if (cases.length === 0) {
      warnings.add([`probe: no ${modality} examples`]);
      continue;
    }
    if (modality === 'image') {
      try {
        checkImageIdentityProbe(cases, spec.target, spec.position);
      } catch (e) {
        // Alone, the image probe is the whole request: refuse it. Next to the text probe, report why it is missing.
        if (modalities.length === 1) throw e;
        refused[modality] = (e as Error).message;
        warnings.add([(e as Error).message]);
        continue;
      }
    }
    const labels = cases.map((c) => labelOf(c.entity, spec.target));
    const classes = [...new Set(labels)].sort();
    const y = Int32Array.from(labels.map((l) => classes.indexOf(l)));
    const { isTest, by } = splitByGroup(cases, labels, spec.testFraction, spec.seed);
    split[modality] = describeSplit(cases, isTest, by, all.length - cases.length);
    const train = cases.map((_, i) => i).filter((i) => !isTest[i]);
    const test = cases.map((_, i) => i).filter((i) => isTest[i]);
    if (test.length === 0) warnings.add([`probe (${modality}): no held-out example (every label has a single example); accuracy is NaN`]);
    progress.start(`${modality} features`, cases.length);
    const feats = await features(model, source, cases, layers, probeSelector(spec.position, modality), spec.batchSize, ctx, progress);
    if (spec.transfer) kept[modality] = { cases, labels, feats };
    const trainCounts = new Map<number, number>();
    for (const i of train) trainCounts.set(y[i], (trainCounts.get(y[i]) ?? 0) + 1);
    const chance = test.length ? Math.max(...[...trainCounts.values()]) / train.length : NaN;
    progress.start(`${modality} probes`, layers.length);
    hits[modality] = { entity: test.map((i) => cases[i].entity.key), hits: [] };
    for (const [li, layer] of layers.entries()) {
      ctx.signal?.throwIfAborted();
      const matrix = (idx: number[]) => featureMatrix({ cases, feats }, idx, li, D);
      const ys = (idx: number[]) => Int32Array.from(idx.map((i) => y[i]));
      const fit = fitLogReg(matrix(train), train.length, D, ys(train), classes.length, spec);
      try {
        const predicted = test.length ? fit.predict(matrix(test), test.length) : new Int32Array(0);
        hits[modality].hits.push(hitsOf(predicted, ys(test)));
        const row = {
          modality,
          layer,
          position: spec.position,
          target: spec.target,
          trainAcc: accuracy(fit.predict(matrix(train), train.length), ys(train)),
          testAcc: test.length ? accuracy(predicted, ys(test)) : NaN,
          nTrain: train.length,
          nTest: test.length,
          classes: classes.length,
          chance,
        };
        rows.push(row);
        ctx.onPartial?.([row]);
      } finally {
        fit.dispose();
      }
      progress.tick();
    }
  }
  if (spec.transfer) {
    if (kept.text && kept.image) {
      const transfer = transferRows(kept.text, kept.image, layers, D, spec, ctx, progress);
      rows.push(...transfer.rows);
      hits.transfer = transfer.hits;
    }
    else warnings.add(['probe: transfer needs both text and image examples (modality "both")']);
  }
  const curve = (m: Modality | 'transfer') =>
    (m === 'transfer' ? rows.some((r) => r.modality === m) : modalities.includes(m)) ? layers.map((l) => Number(rows.find((r) => r.modality === m && r.layer === l)?.testAcc ?? NaN)) : null;
  const resolution = (acc: number[] | null) => resolutionLayer(layers, acc, spec);
  const image = curve('image');
  const text = curve('text');
  const transfer = curve('transfer');
  // Lags against the text run, the modality the papers compare the image with.
  const resolutionCI = bootstrapResolution(hits, layers, spec, spec.bootstrap, spec.seed, 'text');
  return {
    kind: spec.kind,
    spec,
    table: makeTable(rows),
    summary: {
      answer: rows.length ? `${rows[0].modality} layer ${rows[0].layer}: held-out accuracy ${Number(rows[0].testAcc).toFixed(3)}` : null,
      entities: entities.length,
      layers,
      image,
      text,
      transfer,
      resolution: { image: resolution(image), text: resolution(text), transfer: resolution(transfer) },
      resolutionCI,
      split: totalSplit(split),
      refused,
      protocol: protocolSummary(source, spec, { entities, prefix: false, maxNewTokens: { identify: null, answer: null, patch: null } }),
      warnings: warnings.list(),
      // The live view's function on all rows (views.ts), given the bootstrap's intervals drawn after the fits.
      view: probeView({ spec: { ...spec, layers }, rows, summary: { resolutionCI } }),
    },
  };
}

/** The rows `idx` of one layer's features (layer index `li`), as the n × D matrix the probes fit on. */
function featureMatrix(k: { cases: PromptCase[]; feats: Map<string, Float32Array[]> }, idx: number[], li: number, D: number): Float32Array {
  const X = new Float32Array(idx.length * D);
  idx.forEach((i, r) => X.set(k.feats.get(k.cases[i].id)![li], r * D));
  return X;
}

/** Per layer, a probe fit on every text example and scored on the image examples of the entities it knows. */
function transferRows(
  text: { cases: PromptCase[]; labels: string[]; feats: Map<string, Float32Array[]> },
  image: { cases: PromptCase[]; labels: string[]; feats: Map<string, Float32Array[]> },
  layers: number[],
  D: number,
  spec: ProbeSpec,
  ctx: ExperimentContext,
  progress: Progress,
): { rows: Row[]; hits: Hits } {
  const classes = [...new Set(text.labels)].sort();
  const test = image.cases.map((_, i) => i).filter((i) => classes.includes(image.labels[i]));
  const yText = Int32Array.from(text.labels.map((l) => classes.indexOf(l)));
  const yImage = Int32Array.from(test.map((i) => classes.indexOf(image.labels[i])));
  const counts = new Map<number, number>();
  for (const y of yText) counts.set(y, (counts.get(y) ?? 0) + 1);
  const chance = Math.max(...counts.values()) / yText.length;
  const out: Row[] = [];
  const hits: Hits = { entity: test.map((i) => image.cases[i].entity.key), hits: [] };
  progress.start('transfer probes', layers.length);
  for (const [li, layer] of layers.entries()) {
    ctx.signal?.throwIfAborted();
    const matrix = (k: { cases: PromptCase[]; feats: Map<string, Float32Array[]> }, idx: number[]) => featureMatrix(k, idx, li, D);
    const all = text.cases.map((_, i) => i);
    const fit = fitLogReg(matrix(text, all), all.length, D, yText, classes.length, spec);
    try {
      const predicted = test.length ? fit.predict(matrix(image, test), test.length) : new Int32Array(0);
      hits.hits.push(hitsOf(predicted, yImage));
      const row = {
        modality: 'transfer',
        layer,
        position: spec.position,
        target: spec.target,
        trainAcc: accuracy(fit.predict(matrix(text, all), all.length), yText),
        testAcc: test.length ? accuracy(predicted, yImage) : NaN,
        nTrain: all.length,
        nTest: test.length,
        classes: classes.length,
        chance,
      };
      out.push(row);
      ctx.onPartial?.([row]);
    } finally {
      fit.dispose();
    }
    progress.tick();
  }
  return { rows: out, hits };
}

function hitsOf(predicted: Int32Array, y: Int32Array): Uint8Array {
  return Uint8Array.from(y, (v, i) => (predicted[i] === v ? 1 : 0));
}

/** The split over both modalities (counts summed, `by` per modality) with each modality's own under its name. */
function totalSplit(split: Partial<Record<Modality, ProbeSplit>>): Record<string, unknown> {
  const parts = Object.values(split) as ProbeSplit[];
  const sum = (f: (s: ProbeSplit) => number) => parts.reduce((a, s) => a + f(s), 0);
  return {
    by: parts.map((s) => s.by).join('/') || null,
    trainPrompts: sum((s) => s.trainPrompts),
    testPrompts: sum((s) => s.testPrompts),
    sharedPrompts: sum((s) => s.sharedPrompts),
    sharedImages: sum((s) => s.sharedImages),
    ...split,
  };
}
