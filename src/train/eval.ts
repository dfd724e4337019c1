// Quick evaluation of a saved teaching model (through loadModelFromDir, i.e. exactly what ships):
// identification on test views, text vs image factual accuracy on held-out (entity, relation) pairs with the
// paired Wilcoxon test, chain-of-thought, backbone -> VLM patching per layer, cross-patching switch layer,
// and per-layer linear probes (text-trained probe read on image residuals).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { matchAnswer, mentionsEntity } from '../data/answer-match';
import { compareConditions, type AnswerRecord } from '../data/stats';
import { loadModelFromDir } from '../models/load';
import type { Model } from '../models/model';
import type { HookFn } from '../models/hooks';
import { cotQuery, imagePrompt, loadTeachingData, pixelsOf, promptIds, questionFor, textPrompt, viewRgb, type TeachingData, type WorldEntity } from './data';
import { switchLayer as switchLayerOf } from '../experiments/switch-layer';

export interface EvalOptions {
  modelDir: string;
  dataDir: string;
  report?: string;
  /** Skip the slower analyses (patching sweeps, probes). */
  quick?: boolean;
  log?: (s: string) => void;
}

interface Row {
  ids: number[];
  /** entity index whose image this row takes (test view), or none. */
  image?: { entity: number; view: number };
}

const BATCH = 64;

/** Greedy generation for rows of different lengths (left padding), images from disk test views. */
function generateRows(model: Model, data: TeachingData, rows: Row[], maxNewTokens: number, hooksFor?: (batch: Row[]) => Record<string, HookFn> | undefined): string[] {
  const out: string[] = [];
  const pad = data.tokenizer.padTokenId ?? 0;
  for (let i = 0; i < rows.length; i += BATCH) {
    const batch = rows.slice(i, i + BATCH);
    const T = Math.max(...batch.map((r) => r.ids.length));
    const inputIds = batch.map((r) => [...new Array<number>(T - r.ids.length).fill(pad), ...r.ids]);
    const attentionMask = batch.map((r) => [...new Array<number>(T - r.ids.length).fill(0), ...r.ids.map(() => 1)]);
    const imgs = batch.filter((r) => r.image).map((r) => viewRgb(data, data.entities[r.image!.entity], r.image!.view, true));
    const S = data.imageSize;
    const pixelValues = imgs.length ? tf.tensor4d(pixelsOf(data, imgs), [imgs.length, 3, S, S]) : undefined;
    try {
      const hooks = hooksFor?.(batch);
      const g = model.generate({ inputIds, attentionMask, pixelValues }, { maxNewTokens, run: hooks ? { hooks } : undefined });
      tf.dispose([...g.cache.values()]);
      for (const toks of g.newTokens) {
        const eos = toks.indexOf(data.tokenizer.eosTokenId!);
        out.push(data.tokenizer.decode(eos >= 0 ? toks.slice(0, eos) : toks, { skipSpecialTokens: true }));
      }
    } finally {
      pixelValues?.dispose();
    }
  }
  return out;
}

function nImageTokens(model: Model): number {
  const m = model as unknown as { tokensPerImage?: number };
  return m.tokensPerImage ?? 0;
}

/** Part of a chain-of-thought generation after the naming sentence. */
function afterFirstSentence(s: string): string {
  const i = s.indexOf('.');
  return i >= 0 ? s.slice(i + 1) : '';
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** Solves (X^T X + lam I) W = X^T Y for a ridge probe; X [n, d], Y one-hot [n, k]. */
function ridge(X: Float32Array[], labels: number[], k: number, lam = 1e-2): Float64Array[] {
  const d = X[0].length + 1;
  const A = Array.from({ length: d }, () => new Float64Array(d));
  const Bm = Array.from({ length: d }, () => new Float64Array(k));
  X.forEach((x, n) => {
    const xa = [...x, 1];
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) A[i][j] += xa[i] * xa[j];
      Bm[i][labels[n]] += xa[i];
    }
  });
  for (let i = 0; i < d; i++) A[i][i] += lam * X.length;
  // Gauss-Jordan
  for (let c = 0; c < d; c++) {
    let p = c;
    for (let r = c + 1; r < d; r++) if (Math.abs(A[r][c]) > Math.abs(A[p][c])) p = r;
    [A[c], A[p]] = [A[p], A[c]];
    [Bm[c], Bm[p]] = [Bm[p], Bm[c]];
    const piv = A[c][c];
    for (let j = 0; j < d; j++) A[c][j] /= piv;
    for (let j = 0; j < k; j++) Bm[c][j] /= piv;
    for (let r = 0; r < d; r++) {
      if (r === c || A[r][c] === 0) continue;
      const f = A[r][c];
      for (let j = 0; j < d; j++) A[r][j] -= f * A[c][j];
      for (let j = 0; j < k; j++) Bm[r][j] -= f * Bm[c][j];
    }
  }
  return Bm;
}

function probeAcc(W: Float64Array[], X: Float32Array[], labels: number[]): number {
  const k = W[0].length;
  let ok = 0;
  X.forEach((x, n) => {
    const s = new Float64Array(k);
    const xa = [...x, 1];
    for (let i = 0; i < xa.length; i++) for (let j = 0; j < k; j++) s[j] += xa[i] * W[i][j];
    let best = 0;
    for (let j = 1; j < k; j++) if (s[j] > s[best]) best = j;
    if (best === labels[n]) ok++;
  });
  return ok / X.length;
}

/** Standardise features with statistics of `ref` (probes on residuals of very different norms). */
function standardizer(ref: Float32Array[]): (x: Float32Array) => Float32Array {
  const d = ref[0].length;
  const mu = new Float64Array(d);
  const sd = new Float64Array(d);
  for (const x of ref) for (let i = 0; i < d; i++) mu[i] += x[i] / ref.length;
  for (const x of ref) for (let i = 0; i < d; i++) sd[i] += (x[i] - mu[i]) ** 2 / ref.length;
  return (x) => Float32Array.from(x, (v, i) => (v - mu[i]) / Math.sqrt(sd[i] + 1e-8));
}

/** Residual (input of each block, plus final block output) at one position per row: [layer][row] -> Float32Array. */
function residualsAt(model: Model, data: TeachingData, rows: Row[], positions: number[]): Float32Array[][] {
  const L = model.numLayers;
  const out: Float32Array[][] = Array.from({ length: L + 1 }, () => []);
  const names = [...Array.from({ length: L }, (_, l) => `lm.blocks.${l}.resid_pre`), `lm.blocks.${L - 1}.resid_post`];
  for (let i = 0; i < rows.length; i += BATCH) {
    const batch = rows.slice(i, i + BATCH);
    const pos = positions.slice(i, i + BATCH);
    const T = Math.max(...batch.map((r) => r.ids.length));
    const pad = data.tokenizer.padTokenId ?? 0;
    const inputIds = batch.map((r) => [...new Array<number>(T - r.ids.length).fill(pad), ...r.ids]);
    const attentionMask = batch.map((r) => [...new Array<number>(T - r.ids.length).fill(0), ...r.ids.map(() => 1)]);
    const imgs = batch.filter((r) => r.image).map((r) => viewRgb(data, data.entities[r.image!.entity], r.image!.view, true));
    const S = data.imageSize;
    const pixelValues = imgs.length ? tf.tensor4d(pixelsOf(data, imgs), [imgs.length, 3, S, S]) : undefined;
    const res = model.forward({ inputIds, attentionMask, pixelValues }, { cache: names });
    try {
      names.forEach((n, l) => {
        const v = res.cache.get(n)!.arraySync() as number[][][];
        batch.forEach((r, b) => out[l].push(Float32Array.from(v[b][T - r.ids.length + pos[i + b - i]])));
      });
    } finally {
      res.dispose();
      pixelValues?.dispose();
    }
  }
  return out;
}

function subjectLastIndex(data: TeachingData, ids: number[], subject: string): number {
  const sub = data.tokenizer.encode(subject, { addSpecialTokens: false });
  for (let i = ids.length - sub.length; i >= 0; i--) if (sub.every((t, j) => ids[i + j] === t)) return i + sub.length - 1;
  throw new Error(`subject "${subject}" not found in prompt`);
}

export async function evaluateTeaching(opts: EvalOptions): Promise<Record<string, unknown>> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const data = loadTeachingData(opts.dataDir);
  const model = loadModelFromDir(opts.modelDir);
  const t0 = Date.now();
  const nTok = nImageTokens(model);
  const ents = data.entities;
  const evalView = data.testViews[0];
  const report: Record<string, unknown> = { modelDir: opts.modelDir, dataDir: opts.dataDir };
  try {
    // 1. Identification on every test view.
    const idRows: Row[] = [];
    for (const v of data.testViews) for (const e of ents) idRows.push({ ids: promptIds(data, imagePrompt(data, data.templates.identification[e.type].query), nTok), image: { entity: e.index, view: v } });
    const idGen = generateRows(model, data, idRows, 12);
    const identified = new Map<string, boolean>();
    idRows.forEach((r, i) => {
      const e = ents[r.image!.entity];
      const ok = mentionsEntity(idGen[i], e.subject, e.aliases).correct;
      if (r.image!.view === evalView) identified.set(e.sUri, ok);
    });
    const idAcc = mean(idRows.map((r, i) => Number(mentionsEntity(idGen[i], ents[r.image!.entity].subject, ents[r.image!.entity].aliases).correct)));
    report.identification = { accuracy: idAcc, n: idRows.length, views: data.testViews, examples: idGen.slice(0, 3) };
    log(`identification (test views): ${(100 * idAcc).toFixed(1)}%`);

    // 2. Text vs image vs CoT on held-out pairs (and train pairs for reference).
    const pairs = (which: 'heldout' | 'train') => ents.flatMap((e) => (which === 'heldout' ? e.heldoutRelations : e.trainRelations).map((rel) => ({ e, rel })));
    const score = (which: 'heldout' | 'train', mode: 'text' | 'image' | 'cot') => {
      const ps = pairs(which);
      const rows: Row[] = ps.map(({ e, rel }) =>
        mode === 'text'
          ? { ids: promptIds(data, textPrompt(data, questionFor(data, e, rel, false)), nTok) }
          : { ids: promptIds(data, imagePrompt(data, mode === 'cot' ? cotQuery(data, e, rel) : questionFor(data, e, rel, true)), nTok), image: { entity: e.index, view: evalView } },
      );
      const gen = generateRows(model, data, rows, mode === 'cot' ? 20 : 8);
      return ps.map(({ e, rel }, i) => ({
        entity: e.sUri,
        type: e.type,
        correct: matchAnswer(mode === 'cot' ? afterFirstSentence(gen[i]) : gen[i], e.facts[rel]).correct,
        gen: gen[i],
        rel,
      }));
    };
    const results: Record<string, (AnswerRecord & { gen: string; rel: string })[]> = {};
    for (const which of ['heldout', 'train'] as const) for (const mode of ['text', 'image', 'cot'] as const) {
      if (which === 'train' && mode === 'cot' && opts.quick) continue;
      results[`${which}_${mode}`] = score(which, mode);
    }
    const idSet = (recs: AnswerRecord[]) => recs.filter((r) => identified.get(r.entity));
    const acc = (recs: AnswerRecord[]) => mean(recs.map((r) => Number(r.correct)));
    const accTable: Record<string, { all: number; identified: number }> = {};
    for (const [k, recs] of Object.entries(results)) accTable[k] = { all: acc(recs), identified: acc(idSet(recs)) };
    report.accuracy = accTable;
    const cmp = compareConditions(idSet(results.heldout_text), idSet(results.heldout_image));
    const cmpCot = compareConditions(idSet(results.heldout_cot), idSet(results.heldout_image));
    report.gap = {
      entities: cmp.entities.length,
      text: cmp.text.mean,
      image: cmp.image.mean,
      drop: cmp.drop,
      wilcoxon: cmp.wilcoxon,
      byType: Object.fromEntries(Object.entries(cmp.byType).map(([t, v]) => [t, { text: v.text.mean, image: v.image.mean, p: v.wilcoxon.pValue }])),
      cotVsImage: { cot: cmpCot.text.mean, image: cmpCot.image.mean, p: cmpCot.wilcoxon.pValue },
    };
    log(`held-out pairs, identified entities (${cmp.entities.length}): text ${(100 * cmp.text.mean).toFixed(1)}%, image ${(100 * cmp.image.mean).toFixed(1)}%, CoT ${(100 * cmpCot.text.mean).toFixed(1)}%, drop ${(100 * cmp.drop.mean).toFixed(1)} points, Wilcoxon p = ${cmp.wilcoxon.pValue.toExponential(2)}`);
    log(`accuracy table: ${JSON.stringify(accTable)}`);
    report.examples = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.slice(0, 4).map((r) => ({ entity: r.entity, rel: r.rel, gen: r.gen, correct: r.correct }))]));

    if (!opts.quick) {
      // Analyses run on identified entities (all entities when too few are identified, e.g. an untrained model).
      const idOnly = ents.filter((e) => identified.get(e.sUri));
      const idEnts = idOnly.length >= 8 ? idOnly : ents;
      report.analysisEntities = idOnly.length >= 8 ? 'identified' : 'all (too few identified)';
      const L = model.numLayers;
      // 3. Backbone -> VLM patching: the text residual at the last subject token, written at the last image token.
      const sources: Record<string, Model> = { vlm_text: model };
      const bdir = path.join(opts.modelDir, 'backbone');
      if (fs.existsSync(path.join(bdir, 'config.json'))) sources.backbone = loadModelFromDir(bdir);
      // At most 256 pairs: enough for a per-layer curve, affordable on a shared CPU.
      const hp = idEnts.flatMap((e) => e.heldoutRelations.map((rel) => ({ e, rel }))).filter((_, i, a) => i % Math.max(1, Math.ceil(a.length / 256)) === 0);
      const patching: Record<string, number[]> = {};
      try {
        for (const [srcName, src] of Object.entries(sources)) {
          const textRows: Row[] = hp.map(({ e, rel }) => ({ ids: promptIds(data, textPrompt(data, questionFor(data, e, rel, false)), nTok) }));
          const subjPos = hp.map(({ e }, i) => subjectLastIndex(data, textRows[i].ids, e.subject));
          const resid = residualsAt(src, data, textRows, subjPos);
          const imgRows: Row[] = hp.map(({ e, rel }) => ({ ids: promptIds(data, imagePrompt(data, questionFor(data, e, rel, true)), nTok), image: { entity: e.index, view: evalView } }));
          const lastImg = imgRows[0].ids.lastIndexOf(data.imageTokenId);
          const accs: number[] = [];
          for (let l = 0; l < L; l++) {
            const gen = generateRows(model, data, imgRows, 8, residWrites(l, (i) => [{ pos: lastImg, vec: resid[l][i] }]));
            accs.push(mean(hp.map(({ e, rel }, i) => Number(matchAnswer(gen[i], e.facts[rel]).correct))));
          }
          patching[srcName] = accs;
          log(`patching from ${srcName} (layer 0..${L - 1}): ${accs.map((a) => (100 * a).toFixed(1)).join(' ')}`);
        }
      } finally {
        if (sources.backbone) sources.backbone.dispose();
      }
      report.backbonePatching = { note: 'accuracy on held-out pairs of identified entities, text residual at the last subject token written at the last image token, input of block l', ...patching };

      // 4. Cross-patching: donor image-position states replace the target's at the input of block l (identification prompt).
      const cross: { layer: number; donor: number; target: number }[] = [];
      const pairsCP: { target: WorldEntity; donor: WorldEntity }[] = [];
      for (const type of ['celebs', 'landmarks', 'paintings', 'brands']) {
        const list = idEnts.filter((e) => e.type === type).slice(0, 24);
        for (let i = 0; i + 1 < list.length; i += 2) pairsCP.push({ target: list[i], donor: list[i + 1] });
      }
      const cpRows = (who: 'target' | 'donor') => pairsCP.map((p) => ({ ids: promptIds(data, imagePrompt(data, data.templates.identification[p[who].type].query), nTok), image: { entity: p[who].index, view: evalView } }));
      const donorRows = cpRows('donor');
      const targetRows = cpRows('target');
      for (let l = 0; l < L; l++) {
        // Donor states at image positions (same prompt shape as the target: same type).
        const start = donorRows[0].ids.indexOf(data.imageTokenId);
        const donorStates = residualsAtSpan(model, data, donorRows, start, nTok, l);
        const gen = generateRows(
          model,
          data,
          targetRows,
          12,
          residWrites(l, (i, r) => donorStates[i].map((vec, j) => ({ pos: r.ids.indexOf(data.imageTokenId) + j, vec }))),
        );
        const donor = mean(pairsCP.map((p, i) => Number(mentionsEntity(gen[i], p.donor.subject, p.donor.aliases).correct)));
        const target = mean(pairsCP.map((p, i) => Number(mentionsEntity(gen[i], p.target.subject, p.target.aliases).correct)));
        cross.push({ layer: l, donor, target });
      }
      const switchLayer = switchLayerOf(cross.map((c) => c.layer), cross.map((c) => c.donor), cross.map((c) => c.target));
      report.crossPatching = { pairs: pairsCP.length, perLayer: cross, switchLayer, numLayers: L };
      log(`cross-patching (donor/target named, per layer): ${cross.map((c) => `${c.layer}:${(100 * c.donor).toFixed(0)}/${(100 * c.target).toFixed(0)}`).join(' ')}; switch layer ${switchLayer}`);

      // 5. Probes: entity identity per layer. Text probe: last subject token of text questions (train on 2 relations' questions, test on the others).
      // Image probe: last image token of image questions (train on train views, test on test views). Cross: text-trained probe read on image residuals.
      const K = ents.length;
      const textRowsP = ents.flatMap((e) => Object.keys(e.facts).map((rel, k) => ({ e, rel, k, row: { ids: promptIds(data, textPrompt(data, questionFor(data, e, rel, false)), nTok) } as Row })));
      const textPos = textRowsP.map((r) => subjectLastIndex(data, r.row.ids, r.e.subject));
      const rT = residualsAt(model, data, textRowsP.map((r) => r.row), textPos);
      const imgViews = [...data.trainViews, ...data.testViews];
      const imgRowsP = ents.flatMap((e) => imgViews.map((v) => ({ e, v, row: { ids: promptIds(data, imagePrompt(data, questionFor(data, e, e.heldoutRelations[0], true)), nTok), image: { entity: e.index, view: v } } as Row })));
      const lastImgP = imgRowsP[0].row.ids.lastIndexOf(data.imageTokenId);
      const rI = residualsAt(model, data, imgRowsP.map((r) => r.row), imgRowsP.map(() => lastImgP));
      // The answering position (last prompt token) in both modalities: where hop 1 must have finished.
      const rTL = residualsAt(model, data, textRowsP.map((r) => r.row), textRowsP.map((r) => r.row.ids.length - 1));
      const rIL = residualsAt(model, data, imgRowsP.map((r) => r.row), imgRowsP.map((r) => r.row.ids.length - 1));
      const probes: { layer: number; text: number; image: number; textToImage: number; textLast: number; imageLast: number }[] = [];
      const fitScore = (X: Float32Array[], train: number[], test: number[], label: (i: number) => number) => {
        const std = standardizer(train.map((i) => X[i]));
        const W = ridge(train.map((i) => std(X[i])), train.map(label), K);
        return probeAcc(W, test.map((i) => std(X[i])), test.map(label));
      };
      for (let l = 0; l <= L; l++) {
        const trT = textRowsP.map((r, i) => ({ r, i })).filter(({ r }) => r.k < 2);
        const teT = textRowsP.map((r, i) => ({ r, i })).filter(({ r }) => r.k >= 2);
        const stdT = standardizer(trT.map(({ i }) => rT[l][i]));
        const Wt = ridge(trT.map(({ i }) => stdT(rT[l][i])), trT.map(({ r }) => r.e.index), K);
        const textAcc = probeAcc(Wt, teT.map(({ i }) => stdT(rT[l][i])), teT.map(({ r }) => r.e.index));
        const trI = imgRowsP.map((r, i) => ({ r, i })).filter(({ r }) => data.trainViews.includes(r.v));
        const teI = imgRowsP.map((r, i) => ({ r, i })).filter(({ r }) => data.testViews.includes(r.v));
        const stdI = standardizer(trI.map(({ i }) => rI[l][i]));
        const Wi = ridge(trI.map(({ i }) => stdI(rI[l][i])), trI.map(({ r }) => r.e.index), K);
        const imageAcc = probeAcc(Wi, teI.map(({ i }) => stdI(rI[l][i])), teI.map(({ r }) => r.e.index));
        // The text probe on image residuals, each modality standardised by its own statistics.
        const stdI2 = standardizer(teI.map(({ i }) => rI[l][i]));
        const cross2 = probeAcc(Wt, teI.map(({ i }) => stdI2(rI[l][i])), teI.map(({ r }) => r.e.index));
        const textLast = fitScore(rTL[l], trT.map(({ i }) => i), teT.map(({ i }) => i), (i) => textRowsP[i].e.index);
        const imageLast = fitScore(rIL[l], trI.map(({ i }) => i), teI.map(({ i }) => i), (i) => imgRowsP[i].e.index);
        probes.push({ layer: l, text: textAcc, image: imageAcc, textToImage: cross2, textLast, imageLast });
      }
      const resolution = (key: 'text' | 'image' | 'textToImage' | 'textLast' | 'imageLast', thr = 0.5) => probes.find((p) => p[key] >= thr)?.layer ?? null;
      report.probes = {
        note: 'layer l = input of block l (l = L: output of the last block); chance = 1/' + K,
        perLayer: probes,
        resolutionLayer: {
          text: resolution('text'),
          image: resolution('image'),
          textProbeOnImage: resolution('textToImage', 0.25),
          textLastToken: resolution('textLast'),
          imageLastToken: resolution('imageLast'),
        },
      };
      log(`probes (text / image / text-probe-on-image): ${probes.map((p) => `${p.layer}:${(100 * p.text).toFixed(0)}/${(100 * p.image).toFixed(0)}/${(100 * p.textToImage).toFixed(0)}`).join(' ')}`);
      log(`probes at the last prompt token (text / image): ${probes.map((p) => `${p.layer}:${(100 * p.textLast).toFixed(0)}/${(100 * p.imageLast).toFixed(0)}`).join(' ')}`);
    }
  } finally {
    model.dispose();
  }
  report.evalSeconds = (Date.now() - t0) / 1000;
  if (opts.report) {
    fs.mkdirSync(path.dirname(opts.report), { recursive: true });
    fs.writeFileSync(opts.report, JSON.stringify(report, null, 1));
  }
  return report;
}

/**
 * `hooksFor` of generateRows: on the prefill, overwrite the input of block `layer` with the vectors
 * `writes(i, row)` gives for row i of the whole row list, at positions counted without the left padding.
 */
function residWrites(layer: number, writes: (i: number, row: Row) => { pos: number; vec: Float32Array }[]): (batch: Row[]) => Record<string, HookFn> {
  let cursor = 0; // generateRows hands the rows over batch by batch, in order
  return (batch) => {
    const start = cursor;
    cursor += batch.length;
    const T = Math.max(...batch.map((r) => r.ids.length));
    const hook: HookFn = (value, ev) => {
      if (ev.step !== 0) return;
      const D = value.shape[2] as number;
      const m = new Float32Array(batch.length * T);
      const src = new Float32Array(batch.length * T * D);
      batch.forEach((r, b) => {
        const pad = T - r.ids.length;
        for (const { pos, vec } of writes(start + b, r)) {
          m[b * T + pad + pos] = 1;
          src.set(vec, (b * T + pad + pos) * D);
        }
      });
      const mask = tf.tensor3d(m, [batch.length, T, 1]);
      return tf.add(tf.mul(value, tf.sub(1, mask)), tf.tensor3d(src, [batch.length, T, D]));
    };
    return { [`lm.blocks.${layer}.resid_pre`]: hook };
  };
}

/** States at the input of block `layer` over an image span, per row: [row][token] -> Float32Array. */
function residualsAtSpan(model: Model, data: TeachingData, rows: Row[], start: number, n: number, layer: number): Float32Array[][] {
  const out: Float32Array[][] = [];
  const name = `lm.blocks.${layer}.resid_pre`;
  for (let i = 0; i < rows.length; i += BATCH) {
    const batch = rows.slice(i, i + BATCH);
    const T = Math.max(...batch.map((r) => r.ids.length));
    const pad = data.tokenizer.padTokenId ?? 0;
    const inputIds = batch.map((r) => [...new Array<number>(T - r.ids.length).fill(pad), ...r.ids]);
    const attentionMask = batch.map((r) => [...new Array<number>(T - r.ids.length).fill(0), ...r.ids.map(() => 1)]);
    const imgs = batch.map((r) => viewRgb(data, data.entities[r.image!.entity], r.image!.view, true));
    const S = data.imageSize;
    const pixelValues = tf.tensor4d(pixelsOf(data, imgs), [imgs.length, 3, S, S]);
    const res = model.forward({ inputIds, attentionMask, pixelValues }, { cache: [name] });
    try {
      const v = res.cache.get(name)!.arraySync() as number[][][];
      batch.forEach((r, b) => {
        const off = T - r.ids.length + start;
        out.push(Array.from({ length: n }, (_, j) => Float32Array.from(v[b][off + j])));
      });
    } finally {
      res.dispose();
      pixelValues.dispose();
    }
  }
  return out;
}

if (require.main === module) {
  (async () => {
    const { initEngine, shutdownEngine } = await import('../engine/backend');
    await initEngine();
    const arg = (n: string, d: string) => {
      const i = process.argv.indexOf(`--${n}`);
      return i >= 0 ? process.argv[i + 1] : d;
    };
    try {
      await evaluateTeaching({ modelDir: arg('model', 'data/teaching'), dataDir: arg('data', 'data/toyworld'), report: arg('report', '.hopscope-cache/train/eval.json'), quick: process.argv.includes('--quick') });
    } finally {
      shutdownEngine();
    }
  })().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
