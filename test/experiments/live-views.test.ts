// Every registered experiment kind, recovery included, draws a view from the rows a running sweep has streamed
// (issue 13: partial results had no view, so a live widget said "cannot be drawn" until the end), the view is
// the kind's own and validates against its schema, and built from the final rows it agrees with the
// experiment's own summary.view (the row-based builders must not drift from the experiments' maths).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { BUILTIN_EXPERIMENTS, compareResults, experimentDefinition, partialResult, runExperiment, validateSpec, viewFromResult, type ExperimentResult } from '../../src/experiments';
import type { Row } from '../../src/experiments/checkpoint';
import type { Model } from '../../src/models/model';
import { validateViewState } from '../../src/report/views';
import { loadFixture, syntheticPrompts } from './fixture-data';

let model: Model;
let backbone: Model;
const data = syntheticPrompts(['tok223 tok251', 'tok65 tok291', 'tok5 tok6', 'tok7 tok8']);
const small = { maxNewTokens: 3, batchSize: 2 };

/** Small specs that stream rows in several batches. */
const SPECS: Record<string, Record<string, unknown>> = {
  'recall-gap': { identifyTokens: 3, identify: false, ...small },
  'cross-patch': { identifiedOnly: false, donorsPerTarget: 2, layers: [0, 2], ...small },
  freeze: { identifiedOnly: false, until: 3, earlyCutoff: 1, split: false, ...small },
  knockout: { identifiedOnly: false, window: 3, limit: 2, ...small },
  'logit-lens': { topK: 2, limit: 2, positions: 'last', batchSize: 1 },
  probe: { iterations: 20 },
  attribution: { topK: 1, limit: 3 },
  recovery: { identifiedOnly: false, limit: 2, layers: [0, 3], cot: false, ...small },
  circuit: { limit: 4, topK: 1, k: 3 },
};

before(async () => {
  await initEngine();
  model = loadFixture('llava_tiny_A');
  backbone = loadFixture('llama_tiny_C');
});
after(() => {
  model.dispose();
  backbone.dispose();
  shutdownEngine();
});

function checkView(kind: string, v: ReturnType<typeof viewFromResult>, what: string): void {
  assert.equal(v.view, experimentDefinition(kind).view.kind, `${kind} ${what}: drawn as ${v.view}`);
  const check = validateViewState({ ...v, progress: { done: 1, total: 2 }, error: null });
  assert.ok(check.ok, `${kind} ${what}: ${check.ok ? '' : check.problems.join('; ')}`);
}

test('the registry covers every kind the specs name, recovery included', () => {
  assert.deepEqual(Object.keys(SPECS).sort(), BUILTIN_EXPERIMENTS.map((d) => d.kind).sort());
});

const finals = new Map<string, ExperimentResult>();

for (const def of BUILTIN_EXPERIMENTS) {
  test(`${def.kind}: partial results draw a ${def.view.kind} view while the sweep runs`, async () => {
    const spec = validateSpec({ kind: def.kind, version: 1, ...SPECS[def.kind] });
    const rows: Row[] = [];
    const snapshots: { n: number; view: ReturnType<typeof viewFromResult> }[] = [];
    const result = await runExperiment(spec, {
      model,
      data,
      backbone,
      onPartial: (more) => {
        rows.push(...more);
        snapshots.push({ n: rows.length, view: viewFromResult(partialResult(def.kind, spec, rows, { done: rows.length, total: 0 })) });
      },
    });
    const drawn = snapshots.filter((s) => s.view.view !== 'table');
    assert.ok(drawn.length > 0, `${def.kind}: no partial result could be drawn (${snapshots.length} partial updates)`);
    for (const s of drawn) checkView(def.kind, s.view, `after ${s.n} rows`);
    // Kinds whose rows stream in several batches draw before the last one.
    if (def.kind !== 'recall-gap') assert.ok(drawn[0].n < result.table.numRows(), `${def.kind}: first drawn at ${drawn[0].n} of ${result.table.numRows()} rows`);
    const final = viewFromResult(result);
    checkView(def.kind, final, 'final');
    finals.set(def.kind, result);
    // The final result compared with the sweep half-way (another "model" of the same kind): one figure that
    // validates, the first entry the view's own data and label, the other under compare.
    const half = partialResult(def.kind, spec, rows.slice(0, drawn[0].n), null);
    const cmp = compareResults({ final: result, 'half-way': half });
    checkView(def.kind, cmp, 'compared');
    assert.ok(cmp.view !== 'table' && cmp.label === 'final' && cmp.compare?.length === 1 && cmp.compare[0].label === 'half-way', `${def.kind}: labels`);
    assert.deepEqual(cmp.data, final.data);
    assert.deepEqual(cmp.compare![0].data, viewFromResult(half).data);
    // The builder on the final rows is the experiment's own summary.view (one function draws the live and the
    // final figure); the kinds that add what rows do not hold (token texts, pictures) agree where both speak.
    const own = result.summary.view as Record<string, unknown> | undefined;
    const built = experimentDefinition(def.kind).view.build({ spec: result.spec, rows: result.table.objects() as Row[], summary: result.summary }) as Record<string, unknown>;
    const json = (v: unknown) => JSON.parse(JSON.stringify(v));
    const same = (field: string) => assert.deepEqual(json(built[field]), json(own![field]), `${def.kind}.${field}`);
    if (['cross-patch', 'freeze', 'knockout', 'probe'].includes(def.kind)) assert.deepEqual(json(built), json(own), `${def.kind}: summary.view is the live view's builder on all rows`);
    // Logit lens and attribution add the picture under the patches (and the lens its prompt's id) to the rows' view.
    if (def.kind === 'logit-lens' || def.kind === 'attribution') {
      assert.ok(own, `${def.kind}: a summary.view`);
      const { image: _i, prompt: _p, ...rest } = own;
      assert.deepEqual(json(built), json({ ...rest, image: null }), `${def.kind}: summary.view is the live view's builder on all rows, and the picture`);
    }
    if (def.kind === 'recall-gap') ['rows', 'overall', 'matchRule'].forEach(same);
    if (def.kind === 'recovery') {
      assert.deepEqual(built.layers, result.summary.layers);
      assert.deepEqual(json(built.patched), json(result.summary.patchedAcc));
      assert.equal(built.imageAcc, result.summary.imageAcc);
      assert.equal(built.textAcc, result.summary.textAcc);
    }
  });
}

test('compareResults: one kind per figure, something drawable in each, and a readable error otherwise', () => {
  const probe = finals.get('probe')!;
  const knockout = finals.get('knockout')!;
  assert.ok(probe && knockout, 'the per-kind tests ran first');
  assert.match(compareResults({ late: probe, early: probe }).title, /^probe: late vs early$/);
  assert.equal(compareResults({ late: probe, early: probe }, 'transfer probes').title, 'transfer probes');
  assert.throws(() => compareResults({ late: probe, early: knockout }), /different kinds \(late: probe, early: knockout\)/);
  assert.throws(() => compareResults({}), /give the results to compare/);
  assert.throws(() => compareResults({ late: probe, early: undefined as never }), /early is not an experiment result/);
  assert.throws(() => compareResults({ late: probe.summary as never }), /late is not an experiment result/);
  const empty = partialResult('probe', probe.spec, [], null);
  assert.throws(() => compareResults({ late: probe, early: empty }), /early's probe result has nothing to draw yet/);
  const many = Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((k) => [k, probe]));
  const tooMany = validateViewState({ ...compareResults(many), progress: null, error: null });
  assert.ok(!tooMany.ok && tooMany.problems.some((p) => /7 models on one figure; at most 6/.test(p)), 'the view names the limit');
});

test('a view counts accuracy per entity, then over entities, as the summaries do (live and final figures agree)', () => {
  // e0 answers 1 of 3 questions, e1 its only one: per entity (1/3 + 1) / 2 = 0.667; over rows it would be 0.5.
  const ko = (entity: string, correct: boolean): Row => ({ entity, edges: 'image->last', window: 2, centre: 2, relChange: -0.5, correct });
  const rows = [ko('e0', true), ko('e0', false), ko('e0', false), ko('e1', true), { ...ko('e0', true), edges: 'none', window: null }];
  const spec = validateSpec({ kind: 'knockout', version: 1, window: 3, layers: [2] });
  const view = experimentDefinition('knockout').view.build({ spec, rows, summary: {} }) as { accuracy: number[][]; windows: unknown[] };
  assert.ok(Math.abs(view.accuracy[0][0] - 2 / 3) < 1e-12, `knockout accuracy ${view.accuracy[0][0]}`);
  assert.deepEqual(view.windows, [2]);
  const rc = (entity: string, correct: boolean, condition: string): Row => ({ entity, condition, layer: condition === 'patched' ? 0 : null, correct });
  const rec = experimentDefinition('recovery').view.build({
    spec: validateSpec({ kind: 'recovery', version: 1, layers: [0] }),
    rows: [rc('e0', true, 'patched'), rc('e0', false, 'patched'), rc('e0', false, 'patched'), rc('e1', true, 'patched'), rc('e0', false, 'image')],
    summary: {},
  }) as { patched: number[] };
  assert.ok(Math.abs(rec.patched[0] - 2 / 3) < 1e-12, `recovery patched ${rec.patched[0]}`);
});

test("knockout's cells follow the spec's edge sets, not the order rows first name them", () => {
  // Image prompts come first, so image->last is met before entity->last; the spec lists entity->last first.
  const row = (edges: string, entity: string, relChange: number): Row => ({ entity, edges, window: 1, centre: 1, relChange, correct: true });
  const rows = [row('image->last', 'e0', -0.8), row('entity->last', 'e0', -0.2), row('image->last', 'e1', -0.6)];
  const spec = validateSpec({ kind: 'knockout', version: 1, window: 3, layers: [1], modality: 'both', edges: ['entity->last', 'image->last'] });
  const view = experimentDefinition('knockout').view.build({ spec, rows, summary: {} }) as { edgeSets: string[]; relChange: number[][] };
  assert.deepEqual(view.edgeSets, ['entity → last', 'image → last']);
  assert.ok(Math.abs(view.relChange[0][0] + 0.2) < 1e-12 && Math.abs(view.relChange[1][0] + 0.7) < 1e-12, `relChange ${JSON.stringify(view.relChange)}`);
  // Bands keep the spec's order (the rows' job order), not their centres': lab 2 reads its bands by index.
  const band = (window: string, centre: number): Row => ({ entity: 'e0', edges: 'image->last', window, centre, relChange: centre / 10, correct: true });
  const banded = validateSpec({ kind: 'knockout', version: 1, bands: [[2, 3], [0, 1]] });
  const bv = experimentDefinition('knockout').view.build({ spec: banded, rows: [band('2-3', 3), band('0-1', 1)], summary: {} }) as { windows: string[]; layers: number[]; relChange: number[][] };
  assert.deepEqual([bv.windows, bv.layers, bv.relChange], [['2-3', '0-1'], [3, 1], [[0.3, 0.1]]]);
});
