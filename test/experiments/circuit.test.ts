// Attribution patching on component outputs (mlp_out, attn_out) against exact patching of the same hook
// point on fixture attnp_A (clean = A's row 0, corrupt = row 1, M = logit[223] − logit[251]): the
// gradient estimate equals the finite-difference directional derivative of exact patching (the linear
// term), and ranks the sites as exact patching does.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { activationAt, attributionPatching, logitDiff, patchEffect, type AttributionResult } from '../../src/experiments/attribution-patching';
import type { Model, ModelInputs } from '../../src/models/model';
import { fixtureJson, loadFixture } from './fixture-data';

let model: Model;
let attr: AttributionResult;
let clean: ModelInputs;
let corrupt: ModelInputs;
let baseline = 0;
const inputs = fixtureJson('attnp_A', 'inputs.json');
const metric = logitDiff(inputs.metric.token_plus, inputs.metric.token_minus);
const asInputs = (x: Record<string, any>): ModelInputs => ({ inputIds: x.input_ids, pixelValues: tf.tensor(x.pixel_values.flat(3), [1, 3, 28, 28]) });
const point = (l: number, c: string) => `lm.blocks.${l}.${c}`;
let L = 0;

before(async () => {
  await initEngine();
  model = loadFixture('attnp_A');
  L = model.numLayers;
  clean = asInputs(inputs.clean);
  corrupt = asInputs(inputs.corrupt);
  baseline = tf.memory().numTensors;
  const points = Array.from({ length: L }, (_, l) => [point(l, 'mlp_out'), point(l, 'attn_out')]).flat();
  attr = attributionPatching(model, clean, corrupt, metric, { points });
});
after(() => {
  tf.dispose([clean.pixelValues!, corrupt.pixelValues!]);
  model.dispose();
  shutdownEngine();
});

test('mlp_out / attn_out attribution = the finite-difference derivative of exact patching', () => {
  const T = attr.T;
  for (const comp of ['mlp_out', 'attn_out']) {
    const pairs: [number, number][] = [];
    // The 6 largest sites of the component and every 8th position of each layer (speed: 6 forwards per site).
    const all = Array.from({ length: L }, (_, l) => attr.scoresAt.get(point(l, comp))!.map((v, p) => ({ l, p, v }))).flat();
    const largest = new Set(all.slice().sort((x, y) => Math.abs(y.v) - Math.abs(x.v)).slice(0, 6).map((x) => `${x.l}/${x.p}`));
    for (let l = 0; l < L; l++) {
      const act = activationAt(model, corrupt, point(l, comp));
      const scores = attr.scoresAt.get(point(l, comp))!;
      for (let p = 0; p < T; p++) {
        if (!largest.has(`${l}/${p}`) && p % 8 !== 0) continue;
        const d = (eps: number) => (patchEffect(model, clean, point(l, comp), act, [p], metric, eps, attr.mClean) - patchEffect(model, clean, point(l, comp), act, [p], metric, -eps, attr.mClean)) / (2 * eps);
        // Two rounds of Richardson extrapolation of the central difference (ε, 2ε, 4ε): the ε² and ε⁴
        // terms cancel, so ε can be large enough that float32 round-off in M stays far below the scores.
        const [a, b, c] = [d(0.125), d(0.25), d(0.5)];
        const r1 = (4 * a - b) / 3;
        const r2 = (4 * b - c) / 3;
        pairs.push([scores[p], (16 * r1 - r2) / 15]);
      }
    }
    const big = Math.max(...pairs.map(([, f]) => Math.abs(f)));
    const worst = Math.max(...pairs.map(([a, f]) => Math.abs(a - f)));
    assert.ok(worst <= 1e-4 * big, `${comp}: max |attribution − finite difference| ${worst} > 1e-4 × ${big}`);
    // Sites that matter (≥ 10 % of the largest): each within 1e-3 of its own size.
    for (const [a, f] of pairs) if (Math.abs(f) >= 0.1 * big) assert.ok(Math.abs(a - f) <= 1e-3 * Math.abs(f), `${comp}: ${a} vs ${f}`);
  }
  assert.equal(tf.memory().numTensors, baseline);
});

test('mlp_out: the top sites by attribution are the top sites by exact patching', () => {
  const T = attr.T;
  const sites: { key: string; score: number; exact: number }[] = [];
  for (let l = 0; l < L; l++) {
    const act = activationAt(model, corrupt, point(l, 'mlp_out'));
    const scores = attr.scoresAt.get(point(l, 'mlp_out'))!;
    for (let p = 0; p < T; p++) sites.push({ key: `${l}/${p}`, score: scores[p], exact: patchEffect(model, clean, point(l, 'mlp_out'), act, [p], metric, 1, attr.mClean) });
  }
  const top = (f: (s: (typeof sites)[number]) => number, k: number) => sites.slice().sort((a, b) => Math.abs(f(b)) - Math.abs(f(a))).slice(0, k).map((s) => s.key);
  for (const k of [1, 3, 5]) assert.deepEqual(new Set(top((s) => s.score, k)), new Set(top((s) => s.exact, k)), `top-${k}`);
  // Signs agree on every top site.
  for (const key of top((s) => s.exact, 5)) {
    const s = sites.find((x) => x.key === key)!;
    assert.equal(Math.sign(s.score), Math.sign(s.exact), key);
  }
  assert.equal(tf.memory().numTensors, baseline);
});

test('circuit: site scores over position groups sum the per-position attribution; comparison of two runs', async () => {
  const { compareSites, cosine, groupPositions, siteAttribution, siteScores, spearman } = await import('../../src/experiments/circuit');
  const { GROUPS } = await import('../../src/experiments/circuit-sites');
  const { spansFromIds } = await import('../../src/interventions/selectors');
  const spans = spansFromIds(inputs.clean.input_ids[0], { imageTokenId: fixtureJson('attnp_A', 'config.json').image_token_index });
  const groups = groupPositions(spans)!;
  assert.equal(groups.entity.length, 16);
  assert.deepEqual(groups['entity-last'], [groups.entity[15]]);
  assert.deepEqual(groups.last, [attr.T - 1]);
  const sites = siteScores(model, clean, corrupt, spans, metric);
  assert.equal(sites.length, L * 2 * GROUPS.length);
  for (let l = 0; l < L; l++) {
    const s = attr.scoresAt.get(point(l, 'mlp_out'))!;
    const site = sites.find((x) => x.layer === l && x.component === 'mlp_out' && x.group === 'entity')!;
    const want = groups.entity.reduce((a, p) => a + s[p], 0);
    assert.ok(Math.abs(site.score - want) <= 1e-6 * Math.max(1, Math.abs(want)), `${site.score} vs ${want}`);
  }
  // A run compared with itself: full overlap, correlation 1 per layer; with its negation: overlap 1, −1.
  const same = compareSites(sites, sites, 5);
  assert.equal(same.overlap, 1);
  assert.ok(same.perLayer.every((p) => Math.abs(p.spearman - 1) < 1e-12));
  const neg = compareSites(sites, sites.map((s) => ({ ...s, score: -s.score })), 5);
  assert.equal(neg.overlap, 1);
  assert.ok(neg.perLayer.every((p) => Math.abs(p.spearman + 1) < 1e-12));
  // Spearman by hand: ranks (1,2,3,4) vs (2,1,4,3): 1 − 6·Σd²/(n(n²−1)) = 1 − 6·4/60 = 0.6.
  assert.ok(Math.abs(spearman([1, 2, 3, 4], [20, 10, 40, 30]) - 0.6) < 1e-12);
  // What a site writes differently (reuse's input): Σ over the group's positions of corrupt − clean, from the
  // activations of two plain forwards; the same scores as siteScores.
  const { sites: again, delta } = siteAttribution(model, clean, corrupt, spans, metric);
  assert.deepEqual(again.map((x) => x.score), sites.map((x) => x.score));
  const D = model.dModel;
  for (const [layer, component, group] of [[0, 'mlp_out', 'entity'], [1, 'attn_out', 'last'], [L - 1, 'mlp_out', 'entity-last']] as const) {
    const a = activationAt(model, clean, point(layer, component));
    const b = activationAt(model, corrupt, point(layer, component));
    const want = new Float32Array(D);
    for (const p of groups[group]) for (let d = 0; d < D; d++) want[d] += b[p * D + d] - a[p * D + d];
    const got = delta({ component, layer, group, score: 0 });
    assert.equal(got.length, D);
    assert.ok(got.every((v, d) => Math.abs(v - want[d]) <= 1e-5), `${component} ${layer} ${group}`);
    assert.ok(want.some((v) => v !== 0), 'the clean and corrupt inputs differ there');
  }
  // Cosine by hand: (1,0) vs (1,1) = 1/√2; a zero vector or another width has none.
  assert.ok(Math.abs(cosine([1, 0], [1, 1]) - Math.SQRT1_2) < 1e-12);
  assert.ok(Number.isNaN(cosine([0, 0], [1, 1])) && Number.isNaN(cosine([1, 2, 3], [1, 2])));
  assert.equal(tf.memory().numTensors, baseline);
});

test('circuit kind on the teaching VLM and its backbone: three runs on the same pairs, exact checks of the top sites, a layer × site view, tensors freed', async () => {
  const { runExperiment, loadModelWithAssets } = await import('../../src/experiments');
  const { viewFromResult } = await import('../../src/experiments/view-of');
  const { CIRCUIT_RUNS, COMPONENTS, GROUPS } = await import('../../src/experiments/circuit-sites');
  const path = await import('node:path');
  const root = path.join(__dirname, '..', '..');
  const before = tf.memory().numTensors;
  const vlm = loadModelWithAssets(path.join(root, 'data', 'teaching', 'late'));
  try {
    const r = await runExperiment({ kind: 'circuit', version: 1, limit: 2, topK: 2, k: 5, backboneTemplate: 'llava-1.5' }, { model: vlm, data: path.join(root, 'data', 'toyworld') });
    const s = r.summary as Record<string, any>;
    assert.ok(s.pairs >= 1, 'at least one pair');
    const rows = r.table.objects() as Record<string, any>[];
    const L = vlm.numLayers;
    for (const run of CIRCUIT_RUNS) {
      const mine = rows.filter((x) => x.run === run);
      assert.equal(mine.length, s.pairs * L * COMPONENTS.length * GROUPS.length, run);
      // topK sites per pair re-measured, and they are the pair's largest |score|.
      for (let p = 0; p < s.pairs; p++) {
        const pr = mine.filter((x) => x.pair === p);
        const exact = pr.filter((x) => x.exact !== null);
        assert.equal(exact.length, 2, `${run} pair ${p}`);
        const floor = Math.min(...exact.map((x) => Math.abs(x.score)));
        assert.ok(pr.filter((x) => x.exact === null).every((x) => Math.abs(x.score) <= floor), `${run} pair ${p}: the checked sites are the top ones`);
      }
    }
    // The same clean/corrupt entities in every run.
    const pairsOf = (run: string) => rows.filter((x) => x.run === run && x.layer === 0 && x.component === 'mlp_out' && x.group === 'last').map((x) => `${x.clean}>${x.corrupt}`);
    assert.deepEqual(pairsOf('vlm-image'), pairsOf('backbone-text'));
    assert.deepEqual(pairsOf('vlm-text'), pairsOf('backbone-text'));
    assert.equal(s.recall.k, Math.floor(L / 3));
    assert.equal(s.recall.topLayers['backbone-text'].length, s.recall.k);
    assert.ok(s.comparisons['backbone-text~vlm-image'].overlap >= 0 && s.comparisons['backbone-text~vlm-image'].overlap <= 1);
    assert.equal(s.protocol.template !== undefined, true);
    // Two sites per pair re-measured: no comparison on exact effects (it needs every site).
    assert.equal(s.exact, null);
    // Reuse: null on the backbone's own rows, a cosine on the VLM's. The late model keeps the backbone's blocks
    // below its readout's first block (`readout.from` of the recipe its weights record, data/teaching/recipes/
    // late.json), and the VLM's text question names the entity as the backbone's does: at those layers its MLPs
    // write what the backbone's write, cosine 1; the first tuned block writes something else.
    assert.ok(rows.filter((x) => x.run === 'backbone-text').every((x) => x.reuse === null));
    assert.ok(rows.filter((x) => x.run !== 'backbone-text').every((x) => x.reuse === null || (x.reuse >= -1 - 1e-6 && x.reuse <= 1 + 1e-6)));
    const textReuse = s.recall.reuseByLayer['vlm-text'] as number[];
    assert.equal(textReuse.length, L);
    const { readoutFrom } = await import('../teaching-layers');
    const from = readoutFrom(path.join(root, 'data', 'teaching', 'late'));
    assert.ok(from >= 1 && from < L, `the late model's readout starts at block ${from}`);
    for (let l = 0; l < from; l++) assert.ok(Math.abs(textReuse[l] - 1) < 1e-4, `vlm-text layer ${l}: ${textReuse[l]}`);
    assert.ok(textReuse[from] < 0.99, `vlm-text layer ${from}: ${textReuse[from]}`);
    // The headline is the mean over the backbone's top recall layers of the per-layer means, as the rows give them.
    const at = (run: string, l: number) => {
      const v = rows.filter((x) => x.run === run && x.component === 'mlp_out' && x.group === 'entity-last' && x.layer === l && x.reuse !== null).map((x) => x.reuse as number);
      return v.reduce((a, b) => a + b, 0) / v.length;
    };
    const top = s.recall.topLayers['backbone-text'] as number[];
    const want = top.reduce((a, l) => a + at('vlm-image', l), 0) / top.length;
    assert.ok(Math.abs(s.recall.reuse['vlm-image'] - want) < 1e-9, `${s.recall.reuse['vlm-image']} vs ${want}`);
    const view = viewFromResult(r);
    assert.equal(view.view, 'attribution-map');
    const data = view.data as { layers: number[]; positions: { label: string }[]; scores: number[][] };
    assert.deepEqual(data.layers, Array.from({ length: L }, (_, i) => i));
    assert.equal(data.positions.length, CIRCUIT_RUNS.length * COMPONENTS.length * GROUPS.length);
    assert.ok(data.scores.flat().every(Number.isFinite));
    // Only the top sites were re-measured: the map draws the estimates (no `measured`) and marks the first pair's checks.
    assert.equal((view.data as { measured?: string }).measured, undefined);
    assert.ok((view.data as { confirmed: unknown[] }).confirmed.length > 0, 'the re-measured cells are marked');
    // Beside the scores, the VLM runs' reuse per site (the backbone's run has none), the same per-site means the
    // rows give, and it validates as the widgets and figures read it.
    const sim = (view.data as { similarity: { positions: { label: string; kind: string }[]; scores: (number | null)[][] } }).similarity;
    assert.equal(sim.positions.length, 2 * COMPONENTS.length * GROUPS.length);
    assert.ok(sim.positions.every((p) => !p.label.startsWith('LLM')));
    const col = sim.positions.findIndex((p) => p.label === 'VLM·image mlp entity-last');
    for (let l = 0; l < L; l++) {
      const v = sim.scores[l][col];
      assert.ok(v === null ? Number.isNaN(at('vlm-image', l)) : Math.abs(v - at('vlm-image', l)) < 1e-9, `image reuse at layer ${l}: ${v} vs ${at('vlm-image', l)}`);
    }
    const textCol = sim.positions.findIndex((p) => p.label === 'VLM·text mlp entity-last');
    assert.ok(Math.abs((sim.scores[0][textCol] as number) - 1) < 1e-4, 'the text run keeps the backbone at layer 0');
    const { validateViewState } = await import('../../src/report/views');
    const valid = validateViewState(view);
    assert.ok(valid.ok && valid.state.view === 'attribution-map' && valid.state.data.similarity, valid.ok ? 'no similarity after validation' : valid.problems.join('; '));
    // Its columns are sites, so the figure names them as such and no click patches a "position" that is a column.
    assert.equal(valid.state.data.columns, 'site');
  } finally {
    vlm.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'every tensor of the runs (backbone included) is freed');
});

test('circuit with every site re-measured: summary.exact compares the runs on the exact effects the rows hold', async () => {
  const { runExperiment, loadModelWithAssets } = await import('../../src/experiments');
  const { CIRCUIT_RUNS, COMPONENTS, GROUPS } = await import('../../src/experiments/circuit-sites');
  const path = await import('node:path');
  const root = path.join(__dirname, '..', '..');
  const before = tf.memory().numTensors;
  const vlm = loadModelWithAssets(path.join(root, 'data', 'teaching', 'early'));
  try {
    const all = vlm.numLayers * COMPONENTS.length * GROUPS.length;
    const k = 10;
    const r = await runExperiment({ kind: 'circuit', version: 1, limit: 4, topK: all, k, backboneTemplate: 'llava-1.5' }, { model: vlm, data: path.join(root, 'data', 'toyworld') });
    const s = r.summary as Record<string, any>;
    assert.ok(s.pairs >= 1, 'at least one pair');
    const rows = r.table.objects() as Record<string, any>[];
    assert.ok(rows.every((x) => typeof x.exact === 'number' && Number.isFinite(x.exact)), 'every site measured');
    assert.ok(s.exact, 'summary.exact with every site measured');
    // The same numbers from the rows: per run, the mean exact effect per site over pairs; the backbone's top k.
    const mean = (run: string) => {
      const m = new Map<string, number[]>();
      for (const x of rows.filter((y) => y.run === run)) m.set(`${x.component}/${x.layer}/${x.group}`, [...(m.get(`${x.component}/${x.layer}/${x.group}`) ?? []), x.exact]);
      return new Map([...m].map(([key, v]) => [key, v.reduce((a, b) => a + b, 0) / v.length]));
    };
    const means = Object.fromEntries(CIRCUIT_RUNS.map((run) => [run, mean(run)]));
    const top = (run: string) => [...means[run]].sort((a, b) => Math.abs(b[1]) - Math.abs(a[1])).slice(0, k).map(([key]) => key);
    const layers = top('backbone-text').filter((key) => key.startsWith('mlp_out/') && key.endsWith('/entity-last')).map((key) => Number(key.split('/')[1])).sort((a, b) => a - b);
    assert.deepEqual(s.exact.recall.layers, layers);
    assert.ok(layers.length >= 1, "the backbone's recall MLPs at the entity's last token are among its top sites");
    for (const run of ['vlm-text', 'vlm-image']) {
      const mine = new Set(top(run));
      assert.equal(s.exact.recall.found[run], layers.filter((l) => mine.has(`mlp_out/${l}/entity-last`)).length / layers.length, run);
      const eff = layers.map((l) => means[run].get(`mlp_out/${l}/entity-last`)!);
      const bb = layers.map((l) => means['backbone-text'].get(`mlp_out/${l}/entity-last`)!);
      for (const [i, v] of eff.entries()) assert.ok(Math.abs(s.exact.recall.effect[run][i] - v) < 1e-9, `${run} effect at layer ${layers[i]}`);
      const carried = eff.reduce((a, b) => a + b, 0) / bb.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(s.exact.recall.carried[run] - carried) < 1e-9, `${run} carried ${s.exact.recall.carried[run]} vs ${carried}`);
    }
    const shared = top('backbone-text').filter((key) => new Set(top('vlm-image')).has(key)).length / k;
    assert.equal(s.exact.comparisons['backbone-text~vlm-image'].overlap, shared);
    assert.match(s.answer, /exact patching of every site/);
    // The bootstrap over pairs (the default 1000 draws), with intervals the answer prints.
    assert.equal(s.exact.recall.ci.resamples, 1000);
    for (const run of ['vlm-text', 'vlm-image']) {
      const f = s.exact.recall.ci.found[run];
      assert.ok(f.low <= s.exact.recall.found[run] && s.exact.recall.found[run] <= f.high && f.agree > 0 && f.agree <= 1, `${run} found ${JSON.stringify(f)}`);
    }
    assert.match(s.answer, /over 1000 draws of the pairs, found by the image run \d\.\d\d–\d\.\d\d \(\d+\.\d % of draws agree\), carried -?\d\.\d\d–-?\d\.\d\d/);
    // The figure then draws those measured means, not the estimates, says so, and marks no cell as re-measured
    // (every cell is); it validates as the widgets read it.
    const { viewFromResult } = await import('../../src/experiments/view-of');
    const { validateViewState } = await import('../../src/report/views');
    const view = validateViewState(viewFromResult(r));
    assert.ok(view.ok && view.state.view === 'attribution-map', view.ok ? view.state.view : view.problems.join('; '));
    const d = view.state.data as import('../../src/report/views').AttributionMapData;
    assert.equal(d.measured, 'exact');
    // Each pair's metric names its own answers: the colour bar names the mean, not the first pair's tokens.
    assert.equal(d.metric, `logit-diff, mean over ${s.pairs} pairs`);
    assert.deepEqual(d.confirmed, []);
    const runOf = { 'LLM·text': 'backbone-text', 'VLM·text': 'vlm-text', 'VLM·image': 'vlm-image' } as Record<string, string>;
    let differs = 0;
    for (const [ci, pos] of d.positions.entries()) {
      const [run, comp, group] = pos.label.split(' ');
      for (const [li, l] of d.layers.entries()) {
        const want = means[runOf[run]].get(`${comp === 'mlp' ? 'mlp_out' : 'attn_out'}/${l}/${group}`)!;
        assert.ok(Math.abs(d.scores[li][ci] - want) < 1e-9, `${pos.label} layer ${l}: drawn ${d.scores[li][ci]}, exact mean ${want}`);
        const est = rows.filter((x) => x.run === runOf[run] && x.layer === l && x.group === group && x.component === (comp === 'mlp' ? 'mlp_out' : 'attn_out')).map((x) => x.score as number);
        if (Math.abs(est.reduce((a, b) => a + b, 0) / est.length - want) > 1e-3) differs++;
      }
    }
    assert.ok(differs > 0, 'the exact means differ from the estimates somewhere (else this test could not tell which is drawn)');
  } finally {
    vlm.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'every tensor of the runs (backbone included) is freed');
});

test('exact patching of many sites in batches (one row per site, a per-row mask at each hook) equals one patched run per site', async () => {
  const { loadModelWithAssets } = await import('../../src/experiments');
  const { toPromptSource } = await import('../../src/experiments/to-source');
  const { prepareSource } = await import('../../src/experiments/sources/dataset');
  const { makeBatch } = await import('../../src/experiments/batch');
  const { exactSites } = await import('../../src/experiments/circuit');
  const path = await import('node:path');
  const root = path.join(__dirname, '..', '..');
  const before = tf.memory().numTensors;
  const vlm = loadModelWithAssets(path.join(root, 'data', 'teaching', 'late'));
  try {
    const src = toPromptSource(vlm, path.join(root, 'data', 'toyworld'));
    const [e1, e2] = src.entities({ limit: 2, seed: 3 });
    await prepareSource(src, [e1, e2]);
    // Two image prompts of one template, so of one length (the patch needs it): views of two entities.
    const [c1, c2] = [src.views(e1)[0], src.views(e2)[0]];
    assert.equal(c1.inputIds.length, c2.inputIds.length);
    const A = await makeBatch(vlm, src, [c1]);
    const B = await makeBatch(vlm, src, [c2]);
    try {
      const T = A.T;
      const img = c1.spans.images[0];
      // Seven sites, batches of 3: a chunk with two rows at one hook (other positions), one with one site alone.
      const sites = [
        { hook: 'lm.blocks.0.mlp_out', positions: [T - 1] },
        { hook: 'lm.blocks.0.mlp_out', positions: Array.from({ length: img.length }, (_, i) => img.start + i) },
        { hook: 'lm.blocks.3.attn_out', positions: [img.start + img.length - 1] },
        { hook: 'lm.blocks.5.mlp_out', positions: [2, 3, 4] },
        { hook: 'lm.blocks.5.attn_out', positions: [T - 1] },
        { hook: 'lm.blocks.11.mlp_out', positions: [T - 1, T - 2] },
        { hook: 'lm.blocks.3.attn_out', positions: [0] },
      ];
      const metric = logitDiff(11, 17);
      const clean = vlm.forward(A.inputs, { logits: 'last' });
      const mClean = metric.value(clean.logits!.dataSync() as Float32Array);
      clean.dispose();
      const corrupt = vlm.forward(B.inputs, { cache: [...new Set(sites.map((s) => s.hook))], logits: 'last' });
      let batched: number[];
      try {
        batched = await exactSites(vlm, src, c1, corrupt.cache, sites, metric, mClean, 3);
      } finally {
        corrupt.dispose();
      }
      assert.equal(batched.length, sites.length);
      for (const [i, s] of sites.entries()) {
        const one = patchEffect(vlm, A.inputs, s.hook, activationAt(vlm, B.inputs, s.hook), s.positions, metric, 1, mClean);
        assert.ok(Math.abs(batched[i] - one) < 1e-4, `${s.hook} at ${s.positions.length} position(s): batched ${batched[i]}, alone ${one}`);
      }
      assert.ok(batched.some((v) => Math.abs(v) > 1e-3), 'some patch moves the metric (else equality says nothing)');
    } finally {
      A.dispose();
      B.dispose();
    }
  } finally {
    vlm.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'the patched batches free their tensors');
});
