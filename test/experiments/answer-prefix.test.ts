// Identification prompts end with their type's answer prefix in attribution and knockout (`answerPrefix`), so what
// those experiments measure at the last position is the entity's name. Without it, the next token on the teaching
// models is the answer's first word, "The", the same for every entity: attribution contrasted "The" with "This"
// and notebook 4's identification knockout read 0.000 everywhere. Checked on the shipped late model and toyworld.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { TEACHING_DATA_DIR, TEACHING_MODELS } from '../../src/data/teaching-models';
import { loadPopVQA } from '../../src/data/popvqa';
import { datasetSource, loadModelWithAssets, runExperiment } from '../../src/experiments';
import type { Model } from '../../src/models/model';

let model: Model;
let source: ReturnType<typeof datasetSource>;
before(async () => {
  await initEngine();
  model = loadModelWithAssets(TEACHING_MODELS['teaching-late']);
  source = datasetSource(model, loadPopVQA(TEACHING_DATA_DIR));
});
after(() => {
  model.dispose();
  shutdownEngine();
});

test('attribution on identification prompts contrasts the two entities\' names, and says which tokens', async () => {
  const baseline = tf.memory().numTensors;
  const r = await runExperiment({ kind: 'attribution', version: 1, limit: 4, seed: 1, topK: 0 }, { model, data: TEACHING_DATA_DIR });
  const pairs = r.summary.pairs as { clean: string; corrupt: string; metric: string }[];
  assert.ok(pairs.length >= 2, JSON.stringify(pairs));
  for (const p of pairs) {
    const m = /^logit\[(\d+) "(.+)"\] - logit\[(\d+) "(.+)"\]$/.exec(p.metric);
    assert.ok(m, p.metric);
    // The model names both entities correctly here: each side's token starts its own entity's name.
    assert.ok(p.clean.startsWith(m![2]) && p.corrupt.startsWith(m![4]), `${p.metric} for ${p.clean} vs ${p.corrupt}`);
  }
  assert.ok(r.summary.protocol.answerPrefix !== null, 'the protocol records the prefix');
  const bare = await runExperiment({ kind: 'attribution', version: 1, limit: 4, seed: 1, topK: 0, answerPrefix: false }, { model, data: TEACHING_DATA_DIR });
  assert.match((bare.summary.pairs as { metric: string }[])[0].metric, /^logit\[\d+ "The"\]/, 'without the prefix the metric reads the answer\'s first word');
  assert.equal(tf.memory().numTensors, baseline);
});

test('knockout on identification prompts measures the name\'s first token, which cutting the image off moves', async () => {
  const spec = { kind: 'knockout' as const, version: 1 as const, window: 3, prompts: 'identification' as const, limit: 4, seed: 1, accuracy: false, identifiedOnly: false, edges: ['image->last' as const, 'last->last' as const] };
  const r = await runExperiment(spec, { model, data: TEACHING_DATA_DIR });
  const rows = r.table.objects() as { entity: string; answerToken: number }[];
  const subjects = new Map(source.entities({}).map((e) => [e.key, e.subject]));
  assert.ok(rows.length > 0);
  for (const row of rows) {
    const name = subjects.get(row.entity);
    assert.ok(name?.startsWith(source.decode([row.answerToken])), `${source.decode([row.answerToken])} for ${name}`);
  }
  const [imageLast] = r.summary.relChange as number[][];
  assert.ok(Math.min(...imageLast) < -0.2, `image->last moves the name's probability: ${imageLast}`);
  // Without the prefix the measured token is the answer's first word, "The", in every row: what the image changes is
  // the name after it, so cutting the image off moves that word far less (session 31's 12-layer late model: at most 0.25,
  // against 0.997 for the name; the 8-layer one: under 0.01).
  const bare = await runExperiment({ ...spec, answerPrefix: false }, { model, data: TEACHING_DATA_DIR });
  const bareRows = bare.table.objects() as { answerToken: number }[];
  assert.ok(bareRows.length > 0 && bareRows.every((row) => source.decode([row.answerToken]).trim() === 'The'), 'without the prefix "The" is measured');
  const bareMax = Math.max(...(bare.summary.relChange as number[][])[0].map(Math.abs));
  assert.ok(bareMax < Math.max(...imageLast.map(Math.abs)) / 2, `image->last moves "The" (${bareMax}) far less than the name (${Math.max(...imageLast.map(Math.abs))})`);
});
