// Attribution patching reproduced against HF (fixture attnp_A): gradients dM/d(hidden state), scores on
// hidden_states and on decoder-layer outputs, and the exact activation-patching effects, all within
// 1e-4 relative to the largest reference value.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { attributionPatching, logitDiff, type AttributionResult } from '../../src/experiments/attribution-patching';
import { exactPatchJobs } from '../../src/experiments/attribution';
import { rawSource } from '../../src/experiments/sources/raw';
import { cleanStates, sweep } from '../../src/experiments/scheduler';
import type { Model, ModelInputs } from '../../src/models/model';
import { fixtureJson, IMG, loadFixture } from '../experiments/fixture-data';

let model: Model;
let attr: AttributionResult;
const inputs = fixtureJson('attnp_A', 'inputs.json');
const ref = fixtureJson('attnp_A', 'outputs.json');
const metric = logitDiff(inputs.metric.token_plus, inputs.metric.token_minus);
const asInputs = (x: Record<string, any>): ModelInputs => ({ inputIds: x.input_ids, pixelValues: tf.tensor(x.pixel_values.flat(3), [1, 3, 28, 28]) });

before(async () => {
  await initEngine();
  model = loadFixture('attnp_A');
  const c = asInputs(inputs.clean);
  const k = asInputs(inputs.corrupt);
  attr = attributionPatching(model, c, k, metric);
  tf.dispose([c.pixelValues!, k.pixelValues!]);
});
after(() => {
  model.dispose();
  shutdownEngine();
});

/** max |a − b| / max |b| over all entries. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return d / s;
}

test('metric values of the clean and corrupt runs', () => {
  assert.ok(Math.abs(attr.mClean - ref.clean.M) < 1e-5 && Math.abs(attr.mCorrupt - ref.corrupt.M) < 1e-5, `${attr.mClean} ${attr.mCorrupt}`);
});

test('gradients dM/d hidden_states[i] (HF indexing; [L] is post-norm) and of the raw last-layer output', (t) => {
  attr.gradHidden.forEach((g, i) => {
    const e = relErr(g, (ref.clean.grad_hidden_states[i] as number[][]).flat());
    t.diagnostic(`grad hidden_states[${i}] rel err ${e.toExponential(2)}`);
    assert.ok(e < 1e-4, `hidden_states[${i}]: ${e}`);
  });
  const last = attr.gradLayerOut[model.numLayers - 1];
  assert.ok(relErr(last, (ref.clean.grad_last_layer_output_before_norm as number[][]).flat()) < 1e-4);
});

test('attribution scores on hidden_states and decoder-layer outputs', (t) => {
  const eh = relErr(attr.scoresHidden.flat(), (ref.attribution_patching.hidden_states as number[][]).flat());
  const ed = relErr(attr.scoresLayerOut.flat(), (ref.attribution_patching.decoder_layer_outputs as number[][]).flat());
  t.diagnostic(`attribution rel err: hidden_states ${eh.toExponential(2)}, decoder_layer_outputs ${ed.toExponential(2)}`);
  assert.ok(eh < 1e-4 && ed < 1e-4, `${eh} ${ed}`);
});

test('exact activation patching of every (layer, position) through the scheduler', async (t) => {
  // Pre-tokenised prompts for the two runs; each job writes the corrupt run's block-l output at one position.
  const px = (x: Record<string, any>) => ({ shape: [1, 3, 28, 28], data: (x.pixel_values as number[][][][]).flat(3) });
  const source = rawSource({
    format: 'hopscope-prompts',
    version: 1,
    imageTokenId: IMG,
    entities: [
      { key: 'clean', subject: 'tok1', type: 'celebs' },
      { key: 'corrupt', subject: 'tok2', type: 'celebs' },
    ],
    images: { clean: px(inputs.clean), corrupt: px(inputs.corrupt) },
    prompts: [
      { entity: 'clean', role: 'identify', modality: 'image', inputIds: inputs.clean.input_ids[0], image: 'clean' },
      { entity: 'corrupt', role: 'identify', modality: 'image', inputIds: inputs.corrupt.input_ids[0], image: 'corrupt' },
    ],
  });
  const [c, k] = source.entities().map((e) => source.identification(e)!);
  const set = await cleanStates(model, source, [c, k], 1);
  try {
    const T = c.inputIds.length;
    const cells = Array.from({ length: model.numLayers * T }, (_, i) => ({ layer: Math.floor(i / T), position: i % T }));
    const w = set.where.get(c.id)!;
    const mClean = metric.value(w.clean.lastLogits[w.row]);
    const jobs = exactPatchJobs(w, set.where.get(k.id)!, cells, 'resid_post', model.numLayers, 'attnp');
    const got = new Map<string, number>();
    await sweep(model, jobs, {
      batchSize: 16,
      toRows: (o) => [{ effect: metric.value(o.lastLogits) - mClean }],
      onRows: (r, job) => got.set(job.key, Number(r[0].effect)),
    });
    const want = (ref.activation_patching_decoder_layer_outputs as number[][]).flat();
    const e = relErr(jobs.map((j) => got.get(j.key)!), want);
    t.diagnostic(`exact patching effects rel err ${e.toExponential(2)} (${jobs.length} cells)`);
    assert.ok(e < 1e-4, String(e));
  } finally {
    set.dispose();
  }
});
