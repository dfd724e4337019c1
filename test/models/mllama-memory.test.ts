// Repeated forwards and generations of the new families leave tf.memory().numTensors at its baseline:
// mllama's cross-attention K/V (kept across a generation's tidy scopes) and hook caches are all freed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { loadModelFromDir } from '../../src/models/load';
import type { Model, ModelInputs } from '../../src/models/model';
import { FIXTURES2 } from '../fixtures/paths';
import { pixels, readJson } from './helpers';

before(async () => {
  await initEngine();
});
after(() => shutdownEngine());

function flatAfterRepeats(model: Model, inputs: ModelInputs): void {
  const run = () => {
    model.forward(inputs).dispose();
    model.forward(inputs, { cache: (n) => n.endsWith('resid_post') || n.includes('xattn') }).dispose();
    const g = model.generate({ ...inputs, inputIds: [inputs.inputIds[0]], attentionMask: [inputs.attentionMask![0]], ...rowOf(inputs) }, { maxNewTokens: 3, run: { cache: ['lm.final_norm'] } });
    tf.dispose([...g.cache.values()]);
  };
  run(); // warm-up: lazily created backend state is not a leak
  const base = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) run();
  assert.equal(tf.memory().numTensors, base);
}

let rowPx: tf.Tensor | undefined;
function rowOf(inputs: ModelInputs): Partial<ModelInputs> {
  rowPx?.dispose();
  rowPx = inputs.pixelValues?.slice([0], [1]);
  return {
    pixelValues: rowPx,
    aspectRatioIds: inputs.aspectRatioIds?.slice(0, 1),
    aspectRatioMask: inputs.aspectRatioMask?.slice(0, 1),
    crossAttentionMask: inputs.crossAttentionMask?.slice(0, 1),
  };
}

test('mllama: forwards, hooked forwards and generations keep the tensor count flat', () => {
  const dir = path.join(FIXTURES2, 'mllama_tiny_H');
  const inp = readJson(dir + '/inputs.json');
  const start = tf.memory().numTensors;
  const model = loadModelFromDir(dir);
  const px = pixels(inp.pixel_values);
  try {
    flatAfterRepeats(model, {
      inputIds: inp.input_ids,
      attentionMask: inp.attention_mask,
      pixelValues: px,
      aspectRatioIds: inp.aspect_ratio_ids,
      aspectRatioMask: inp.aspect_ratio_mask,
      crossAttentionMask: inp.cross_attention_mask,
    });
  } finally {
    rowPx?.dispose();
    rowPx = undefined;
    px.dispose();
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, start, 'dispose() frees every weight');
});

test('LLaVA-MORE (llama3 RoPE): the same', () => {
  const dir = path.join(FIXTURES2, 'llava_more_tiny_M');
  const inp = readJson(dir + '/inputs.json');
  const start = tf.memory().numTensors;
  const model = loadModelFromDir(dir);
  const px = pixels(inp.pixel_values);
  try {
    flatAfterRepeats(model, { inputIds: inp.input_ids, attentionMask: inp.attention_mask, pixelValues: px });
  } finally {
    rowPx?.dispose();
    rowPx = undefined;
    px.dispose();
    model.dispose();
  }
  assert.equal(tf.memory().numTensors, start, 'dispose() frees every weight');
});
