// The sweep scheduler (start at the patched layer from cached clean states, stacked rows, reused keys and
// values for generation) equals the naive sweep (one full forward or generate per run, unpadded) to 1e-6;
// an aborted sweep keeps its finished rows and a resumed one does not redo them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { RunCheckpoint, type Row } from '../../src/experiments/checkpoint';
import { rawSource } from '../../src/experiments/sources/raw';
import { cleanStates, sweep, type CleanSet, type PatchJob } from '../../src/experiments/scheduler';
import { planJob } from '../../src/experiments/plan';
import type { Model } from '../../src/models/model';
import { loadFixture, syntheticPrompts } from './fixture-data';

let model: Model;
let set: CleanSet;
let jobs: PatchJob[];
let baseline = 0;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-sched-'));

before(async () => {
  await initEngine();
  model = loadFixture('llava_tiny_A');
  baseline = tf.memory().numTensors;
  const source = rawSource(syntheticPrompts());
  const es = source.entities();
  // Prompts of two lengths (identification 26, questions 22) so chunks group by length.
  const cases = [...es.slice(0, 3).map((e) => source.identification(e)!), source.questions(es[0], 'image')[0], source.questions(es[1], 'text')[0]];
  set = await cleanStates(model, source, cases, 3);
  const w = (i: number) => set.where.get(cases[i].id)!;
  jobs = [];
  for (let l = 0; l < model.numLayers; l++)
    for (const [t, d] of [
      [0, 1],
      [1, 2],
      [2, 0],
    ]) {
      for (const gen of [0, 3])
        jobs.push({
          key: `patch/${l}/${t}/${d}/${gen}`,
          clean: w(t).clean,
          row: w(t).row,
          generate: gen,
          interventions: [{ kind: 'patch', layers: [l], at: 'image', source: { cache: 'donor', row: w(d).row } }],
          sources: { donor: w(d).clean.source },
        });
    }
  for (let l = 0; l < model.numLayers - 1; l++) {
    jobs.push({ key: `freeze/${l}`, clean: w(1).clean, row: w(1).row, generate: 3, interventions: [{ kind: 'freeze', from: l, until: model.numLayers - 1, at: 'image', source: { cache: 'clean' } }] });
    jobs.push({ key: `knock/${l}`, clean: w(3).clean, row: w(3).row, generate: 3, interventions: [{ kind: 'knockout', layers: [l, l + 1], from: 'image', to: { kind: 'union', of: [{ kind: 'after-image' }, { kind: 'generated' }] } }] });
    jobs.push({ key: `steer/${l}`, clean: w(4).clean, row: w(4).row, interventions: [{ kind: 'steer', layers: [l + 1], at: 'entity', vector: new Array(64).fill(0.1) }] });
    jobs.push({ key: `ablate/${l}`, clean: w(3).clean, row: w(3).row, interventions: [{ kind: 'ablate', layers: [l], site: 'mlp_out', at: 'image', mode: 'zero' }] });
  }
});
after(() => {
  set.dispose();
  assert.equal(tf.memory().numTensors, baseline);
  model.dispose();
  shutdownEngine();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const toRows = (o: { lastLogits: Float32Array; newTokens: number[] | null; job: PatchJob }): Row[] => [{ key: o.job.key, logits: Array.from(o.lastLogits), tokens: o.newTokens }];

test('scheduled sweep equals the naive sweep (one full run per job) to 1e-6', async (t) => {
  const naive = await sweep(model, jobs, { batchSize: 1, naive: true, toRows });
  const fast = await sweep(model, jobs, { batchSize: 8, toRows });
  let d = 0;
  fast.forEach((r, i) => {
    assert.equal(r.key, naive[i].key);
    assert.deepEqual(r.tokens, naive[i].tokens, String(r.key));
    const a = r.logits as number[];
    const b = naive[i].logits as number[];
    for (let k = 0; k < a.length; k++) d = Math.max(d, Math.abs(a[k] - b[k]));
  });
  t.diagnostic(`${jobs.length} jobs, scheduled vs naive max |logit diff| ${d.toExponential(2)}`);
  assert.ok(d < 1e-6, `max diff ${d}`);
});

test("a patch realised through the donor's states keeps its guard: patching a prompt with its own image warns of a no-op", async () => {
  const self = jobs.find((j) => j.key === 'patch/1/0/1/0')!;
  const job: PatchJob = { ...self, key: 'self', interventions: [{ kind: 'patch', layers: [1], at: 'image', source: { cache: 'clean' } }], sources: undefined };
  assert.ok(planJob(model, job).donor, 'the plan reuses the (own) donor prefix');
  const warnings: string[] = [];
  await sweep(model, [job], { batchSize: 1, toRows: () => [], onWarnings: (x) => warnings.push(...x) });
  // (The naive run cannot tell: its unbatched forward differs from the batched clean states by float rounding.)
  assert.equal(warnings.length, 1, warnings.join('; '));
  assert.match(warnings[0], /every write equals the value it replaced \(a no-op/);
  // A real donor changes the states: no warning.
  const other: string[] = [];
  await sweep(model, [self], { batchSize: 1, toRows: () => [], onWarnings: (x) => other.push(...x) });
  assert.deepEqual(other, []);
});

test('plans: patched image spans reuse the donor\'s keys/values, other runs start at their first affected position', () => {
  const plan = (key: string) => planJob(model, jobs.find((j) => j.key === key)!);
  const p = plan('patch/2/0/1/3');
  assert.equal(p.layer, 2);
  assert.ok(p.donor, 'identification prompts share the prefix: donor continuation');
  assert.equal(p.from, 20, 'positions up to the end of the image span come from the donor');
  const k = plan('knock/1');
  assert.equal(k.donor, null);
  assert.equal(k.layer, 1);
  const steer = plan('steer/0');
  assert.equal(steer.layer, 1);
  assert.ok(steer.from > 0, 'positions before the entity keep their clean keys/values');
  assert.equal(planJob(model, jobs.find((j) => j.key === 'patch/2/0/1/3')!, { donorPrefix: false }).donor, null);
});

test('an aborted sweep keeps finished rows in the checkpoint; resuming runs only the rest', async () => {
  const dir = path.join(tmp, 'run');
  const spec = { kind: 'test' };
  const controller = new AbortController();
  let seen = 0;
  await assert.rejects(
    sweep(model, jobs, {
      batchSize: 4,
      toRows,
      signal: controller.signal,
      checkpoint: RunCheckpoint.open(dir, spec),
      onRows: () => {
        if (++seen === 6) controller.abort(new Error('stop'));
      },
    }),
    /stop/,
  );
  const kept = fs.readFileSync(path.join(dir, 'rows.jsonl'), 'utf8').trim().split('\n').length;
  assert.ok(kept >= 6 && kept < jobs.length, `kept ${kept}`);
  let computed = 0;
  const resumed = await sweep(model, jobs, {
    batchSize: 4,
    toRows: (o) => {
      computed++;
      return toRows(o);
    },
    checkpoint: RunCheckpoint.open(dir, spec),
  });
  assert.equal(computed, jobs.length - kept);
  assert.equal(resumed.length, jobs.length);
  assert.deepEqual(resumed.map((r) => r.key), jobs.map((j) => j.key));
  assert.throws(() => RunCheckpoint.open(dir, { kind: 'other' }), /different spec/);
});
