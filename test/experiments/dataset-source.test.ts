// Real-data prompts: toyworld (PopVQA format, its own tokenizer, PNG images, views with a train/test
// split) through the prompt builder, the CLIP processor and a LLaVA model whose image token is toyworld's
// (fixture A's weights with image_token_index 4). The numbers mean nothing; the path must work.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { runExperiment } from '../../src/experiments';
import { datasetSource, prepareSource } from '../../src/experiments/sources/dataset';
import { loadPopVQA } from '../../src/data/popvqa';
import { LlavaModel } from '../../src/models/llava/model';
import { loadToyworldLlava } from './fixture-data';

const TOYWORLD = path.resolve(__dirname, '../../data/toyworld');
let model: LlavaModel;
let baseline = 0;

before(async () => {
  await initEngine();
  model = loadToyworldLlava();
  baseline = tf.memory().numTensors;
});
after(() => {
  model.dispose();
  shutdownEngine();
});

const ds = () => loadPopVQA(TOYWORLD, { limitPerType: 1 });

test('identification, text and image prompts carry their spans; images are processed for the model', async () => {
  const source = datasetSource(model, ds());
  const es = source.entities();
  assert.equal(es.length, 4);
  await prepareSource(source, es);
  const id = source.identification(es[0])!;
  assert.equal(id.spans.images.length, 1);
  assert.equal(id.spans.images[0].length, 16);
  assert.deepEqual(id.spans.images[0].layout, { kind: 'grid', rows: 4, cols: 4, cls: 0 });
  assert.equal(id.inputIds.filter((t) => t === 4).length, 16);
  const text = source.questions(es[0], 'text')[0];
  assert.ok(text.spans.subject, 'the text question names the entity: subject span');
  assert.equal(source.decode(text.inputIds.slice(text.spans.subject!.start, text.spans.subject!.end)).replace(/ /g, ''), es[0].subject.replace(/ /g, ''));
  const px = await source.pixels(id.image!);
  assert.deepEqual(px.shape, [1, 3, 28, 28]);
  const views = source.views(es[0]);
  assert.ok(views.some((v) => v.split === 'train') && views.some((v) => v.split === 'test'));
});

test('recall-gap, logit-lens and probe run end to end on toyworld', async () => {
  const data = ds();
  const r = await runExperiment({ kind: 'recall-gap', version: 1, identify: false, maxNewTokens: 2 }, { model, data });
  assert.ok(r.table.numRows() >= 8);
  const ll = await runExperiment({ kind: 'logit-lens', version: 1, limit: 1, topK: 1, positions: 'image', layers: [3] }, { model, data });
  assert.equal(ll.table.numRows(), 16);
  const pr = await runExperiment({ kind: 'probe', version: 1, modality: 'image', iterations: 20, layers: [1, 3] }, { model, data });
  assert.equal(pr.table.numRows(), 2);
  assert.equal(tf.memory().numTensors, baseline);
});
