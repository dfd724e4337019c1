// The labs' self-checks (notebooks/labs/checks.ts) against a stand-in library: right answers pass, wrong ones fail
// with a nudge that does not give the answer away, blanks say "not answered", and the measurement runs once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LAB2_BASE, LAB3_RECOVERY, LAB4_CIRCUIT, LAB4_CROSSPATCH, LAB4_PROBE, checkLab1, checkLab2, checkLab3, checkLab4, lab2Spec, lab3Spec, lab4CircuitSpec, lab4GapSpec, layerLine, type LabContext } from '../../notebooks/labs/checks';

function fakeHs(summaryOf: (spec: Record<string, unknown>) => Record<string, unknown>) {
  const calls: Record<string, unknown>[] = [];
  const hs = {
    async runExperiment(spec: Record<string, unknown>) {
      calls.push(spec);
      return { kind: spec.kind, spec: { threshold: 0.5, ...spec }, table: null, summary: summaryOf(spec) };
    },
  };
  return { hs, calls };
}

test('layerLine: within ±1 passes, otherwise says too early / too late; blank is "not answered"', () => {
  assert.equal(layerLine('x', 3, 4).status, 'pass');
  assert.equal(layerLine('x', 5, 4).status, 'pass');
  const early = layerLine('x', 1, 4);
  assert.equal(early.status, 'fail');
  assert.match(early.message, /too early/);
  assert.doesNotMatch(early.message, /4/);
  assert.match(layerLine('x', 7, 4).message, /too late/);
  assert.equal(layerLine('x', undefined, 4).status, 'missing');
  assert.equal(layerLine('x', 2.5, 4).status, 'fail');
  assert.equal(layerLine('x', 2, null).status, 'fail');
});

test('lab 1: the switch layer (cross-patching) and the text resolution layer (probe) are measured live, once', async () => {
  const { hs, calls } = fakeHs((spec) => (spec.kind === 'cross-patch' ? { switchLayer: 4 } : { resolution: { image: null, text: 1 } }));
  const ctx: LabContext = { hs, model: { numLayers: 6 }, data: 'd' };
  const ok = await checkLab1(ctx, { switchLayer: 5, textLayer: 1, earlier: 'text' }, { quiet: true });
  assert.ok(ok.passed);
  assert.deepEqual(ok.solution, { switchLayer: 4, textResolution: 1, earlier: 'text', threshold: 0.5 });
  const bad = await checkLab1(ctx, { switchLayer: 1, textLayer: null, earlier: 'image' }, { quiet: true });
  assert.deepEqual(bad.lines.map((l) => l.status), ['fail', 'missing', 'fail']);
  assert.equal(calls.length, 2, 'each measurement runs once per model and spec');
});

test('lab 2: a design must stay within half the layers and reach the goal measured live', async () => {
  // Best band of 3 layers: image->query 1-3 (-0.9); the goal is -0.5.
  const { hs } = fakeHs((spec) => {
    const edges = spec.edges as string[];
    const bands = spec.bands as [number, number][];
    const rel = (e: string, [a]: [number, number]) => (e === 'image->query' ? (a === 1 ? -0.9 : -0.6) : e === 'image->last' ? -0.2 : 0.01);
    return { edgeSets: edges, relChange: edges.map((e) => bands.map((b) => rel(e, b))) };
  });
  const ctx: LabContext = { hs, model: { numLayers: 6 }, data: 'd' };
  const good = await checkLab2(ctx, { edges: 'image->query', from: 1, to: 3 }, { quiet: true });
  assert.ok(good.passed);
  assert.deepEqual(good.solution.best, { edges: 'image->query', from: 1, to: 3, relChange: -0.9 });
  assert.equal(good.solution.maxWidth, 3);
  assert.equal((await checkLab2(ctx, { edges: 'image->last', from: 0, to: 2 }, { quiet: true })).passed, false);
  const wide = await checkLab2(ctx, { edges: 'image->query', from: 0, to: 4 }, { quiet: true });
  assert.match(wide.lines[0].message, /budget is 3/);
  assert.equal((await checkLab2(ctx, {}, { quiet: true })).lines[0].status, 'missing');
});

test('lab 3: best patching layer ±1 and whether chain of thought helps', async () => {
  const { hs, calls } = fakeHs(() => ({ bestLayer: 2, imageAcc: 0.2, textAcc: 0.6, cotAcc: 0.5, patchedAcc: [0.4, 0.5, 0.55, 0.3] }));
  const ctx: LabContext = { hs, model: { numLayers: 4 }, data: 'd', backbone: '/bb' };
  assert.ok((await checkLab3(ctx, { bestLayer: 1, cotHelps: true }, { quiet: true })).passed);
  assert.equal((await checkLab3(ctx, { bestLayer: 3, cotHelps: false }, { quiet: true })).passed, false);
  assert.equal(calls[0].backbone, '/bb');
  await assert.rejects(checkLab3({ hs, model: {}, data: 'd' }, {}, { quiet: true }), /backbone/);
});

test("labs 2 and 3 ask the context's questions (and lab 3 uses its chain-of-thought suffix); without them the specs name neither", async () => {
  const where = { where: { vqa_split: 'heldout' } };
  const cotSuffix = { celebs: 'First name the person in this image, then answer.' };
  const { hs, calls } = fakeHs((spec) =>
    spec.kind === 'knockout'
      ? { edgeSets: spec.edges, relChange: (spec.edges as string[]).map(() => (spec.bands as unknown[]).map(() => -0.6)) }
      : { bestLayer: 1, imageAcc: 0.1, textAcc: 1, cotAcc: 0.7, patchedAcc: [0.1, 0.3, 0.2, 0.1] },
  );
  const ctx: LabContext = { hs, model: { numLayers: 4 }, data: 'd', backbone: '/bb', questions: where, cotSuffix };
  await checkLab2(ctx, { edges: 'image->query', from: 0, to: 1 }, { quiet: true });
  await checkLab3(ctx, { bestLayer: 1, cotHelps: true }, { quiet: true });
  for (const c of calls) assert.deepEqual(c.questions, where);
  assert.deepEqual(calls.filter((c) => c.kind === 'recovery').map((c) => c.cotSuffix), [cotSuffix]);
  assert.ok(calls.filter((c) => c.kind === 'knockout').every((c) => !('cotSuffix' in c)));
  assert.deepEqual(lab2Spec(ctx, ['image->last'], [[0, 1]]), { ...LAB2_BASE, questions: where, edges: ['image->last'], bands: [[0, 1]] });

  const plain: LabContext = { hs, model: { numLayers: 4 }, data: 'd', backbone: '/bb', questions: null };
  assert.ok(!('questions' in lab2Spec(plain, ['image->last'], [[0, 1]])));
  assert.deepEqual(lab3Spec(plain), { ...LAB3_RECOVERY, backbone: '/bb' });
});

test('lab 4: the larger gap, the higher transfer curve, the later switch, the higher reuse and the larger carried effect, each measured on its own model once', async () => {
  // Two stand-in models: the late one drops 0.6, its transfer curve peaks at 0.45 (layer 3), it switches at 4, its
  // image run reuses the backbone's recall MLPs at 0.3 and carries 0.1 of the backbone's exact effect there; the
  // early one drops 0.2, its curve peaks at 0.9 (layer 0), it switches at 2, reuses at 0.8 and carries 0.9.
  const layers = [0, 1, 2, 3, 4, 5];
  const summaries = {
    late: { drop: 0.6, imageAcc: 0.3, textAcc: 0.9, layers, transfer: [0.1, 0.1, 0.2, 0.45, 0.45, 0.3], resolution: { image: 0, text: 1, transfer: null }, switchLayer: 4, recall: { reuse: { 'vlm-image': 0.3 }, topLayers: { 'backbone-text': [0, 1] } }, exact: { recall: { carried: { 'vlm-image': 0.1 } } } },
    early: { drop: 0.2, imageAcc: 0.7, textAcc: 0.9, layers, transfer: [0.9, 0.7, 0.8, 0.8, 0.6, 0.5], resolution: { image: 0, text: 1, transfer: 0 }, switchLayer: 2, recall: { reuse: { 'vlm-image': 0.8 }, topLayers: { 'backbone-text': [0, 1] } }, exact: { recall: { carried: { 'vlm-image': 0.9 } } } },
  };
  const late = fakeHs(() => summaries.late);
  const early = fakeHs(() => summaries.early);
  const q = { where: { vqa_split: 'heldout' } };
  const ctx = { late: { hs: late.hs, model: { name: 'late' }, data: 'd', questions: q }, early: { hs: early.hs, model: { name: 'early' }, data: 'd', questions: q } };
  const ok = await checkLab4(ctx, { largerGap: 'late', higherTransfer: 'early', laterSwitch: 'late', lateSwitch: 5, moreReuse: 'early', moreCarried: 'early' }, { quiet: true });
  assert.ok(ok.passed, JSON.stringify(ok.lines));
  // The first maximum on a tie (late: layers 3 and 4).
  assert.deepEqual(ok.solution.peak, { late: 3, early: 0 });
  assert.deepEqual(ok.solution.resolution, { late: null, early: 0 });
  assert.deepEqual(ok.solution.switchLayer, { late: 4, early: 2 });
  assert.equal(ok.solution.largerGap, 'late');
  assert.deepEqual(ok.solution.reuse, { late: 0.3, early: 0.8 });
  assert.match(ok.lines[4].message, /0\.80 of what the backbone writes .* the other's 0\.30/);
  assert.deepEqual(ok.solution.carried, { late: 0.1, early: 0.9 });
  assert.match(ok.lines[5].message, /carries 0\.90 of the backbone's effect there, the other's 0\.10/);
  const bad = await checkLab4(ctx, { largerGap: 'early', higherTransfer: 'late', laterSwitch: 'same', lateSwitch: 2, moreReuse: 'late', moreCarried: 'late' }, { quiet: true });
  assert.deepEqual(bad.lines.map((l) => l.status), ['fail', 'fail', 'fail', 'fail', 'fail', 'fail']);
  assert.match(bad.lines[3].message, /too early/);
  assert.deepEqual((await checkLab4(ctx, {}, { quiet: true })).lines.map((l) => l.status), ['missing', 'missing', 'missing', 'missing', 'missing', 'missing']);
  // Each model ran its own four specs once (memoised per model): the gap on the held-out questions, the transfer
  // probe, cross-patching, the circuit against its own backbone on the held-out questions.
  for (const calls of [late.calls, early.calls]) {
    assert.equal(calls.length, 4);
    assert.deepEqual(calls[0], lab4GapSpec(ctx.late));
    assert.deepEqual(calls[0].questions, q);
    assert.deepEqual(calls[1], { ...LAB4_PROBE });
    assert.deepEqual(calls[2], { ...LAB4_CROSSPATCH });
    assert.deepEqual(calls[3], { ...LAB4_CIRCUIT, questions: q, backbone: null });
  }
  assert.deepEqual(lab4CircuitSpec({ hs: null, model: null, data: 'd', backbone: '/bb', backboneTemplate: 'llava-1.5' }), { ...LAB4_CIRCUIT, backbone: '/bb', backboneTemplate: 'llava-1.5' });
  // No cosine on one model (no pair, or a backbone of another width): nothing to check, and the line says why.
  const none = { late: { ...ctx.late, hs: fakeHs(() => ({ ...summaries.late, exact: null, recall: { reuse: { 'vlm-image': null }, topLayers: { 'backbone-text': [] } } })).hs, model: { name: 'late2' } }, early: ctx.early };
  const r = await checkLab4(none, { moreReuse: 'early', moreCarried: 'early' }, { quiet: true });
  assert.equal(r.solution.moreReuse, null);
  assert.match(r.lines[4].message, /no reuse was measured/);
  // Its summary has no exact comparison (not every site re-measured): the carried line says so instead of judging.
  assert.equal(r.solution.moreCarried, null);
  assert.equal(r.lines[5].status, 'missing');
  assert.match(r.lines[5].message, /not measured/);
});

test('lab 4: a switch that never happens is later than any layer; equal switches are "same"', async () => {
  const base = { drop: 0.1, imageAcc: 0.5, textAcc: 0.9, layers: [0, 1], transfer: [0.2, 0.3], resolution: { transfer: null }, recall: { reuse: { 'vlm-image': 0.5 }, topLayers: { 'backbone-text': [0] } } };
  const ctxOf = (lateSwitch: number | null, earlySwitch: number | null) => ({
    late: { hs: fakeHs(() => ({ ...base, switchLayer: lateSwitch })).hs, model: {}, data: 'd' },
    early: { hs: fakeHs(() => ({ ...base, switchLayer: earlySwitch })).hs, model: {}, data: 'd' },
  });
  assert.equal((await checkLab4(ctxOf(null, 1), {}, { quiet: true })).solution.laterSwitch, 'late');
  assert.equal((await checkLab4(ctxOf(1, null), {}, { quiet: true })).solution.laterSwitch, 'early');
  assert.equal((await checkLab4(ctxOf(1, 1), {}, { quiet: true })).solution.laterSwitch, 'same');
  assert.match((await checkLab4(ctxOf(null, 1), { lateSwitch: 1 }, { quiet: true })).lines[3].message, /never/);
});
