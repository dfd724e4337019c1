// A kernel starts the engine the CLI uses before the first model loads (issue 16): without it, `%load teaching`
// as the README's first cell put the model on tfjs's pure-JS cpu fallback and printed tfjs's "install
// tfjs-node" banner into the cell. A backend chosen with %backend is kept.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { HsKernel } from '../../kernel/cell-api';
import { createHs } from '../../kernel/hs';
import { BACKEND_ORDER, engineInfo, shutdownEngine } from '../../src/engine/backend';
import { context, run } from './magic-context';
import { TEACHING_LAYERS } from '../teaching-layers';

after(() => shutdownEngine());

/** What initEngine picks first on this machine (tfjs-node when installed, else wasm). */
const FIRST = BACKEND_ORDER.find((b) => b !== 'tensorflow-gpu' && b !== 'tensorflow') ?? 'wasm';

test('%load on a fresh kernel starts the engine first, so the model never lands on the cpu fallback', async () => {
  assert.equal(engineInfo(), null, 'nothing started the engine yet');
  const { ctx } = context();
  await run(ctx, 'load teaching');
  const info = engineInfo();
  assert.ok(info, 'the engine is running');
  assert.notEqual(info.provider, 'cpu', `an engine chose ${info.provider}`);
  if (!['tensorflow', 'tensorflow-gpu'].includes(info.provider)) assert.equal(info.provider, FIRST);
  assert.equal(tf.getBackend(), info.backend, 'tfjs runs the engine’s backend');
});

test('%backend cpu before %load is kept: %load does not switch a chosen backend', async () => {
  shutdownEngine();
  const { ctx } = context();
  await run(ctx, 'backend cpu');
  await run(ctx, 'load teaching');
  assert.equal(engineInfo()?.provider, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
});

test('hs.loadModel in a cell starts the engine like %load', async () => {
  shutdownEngine();
  const hs = createHs({} as HsKernel) as unknown as { loadModel(name: string): Promise<{ numLayers: number }> };
  const model = await hs.loadModel('teaching');
  assert.equal(model.numLayers, TEACHING_LAYERS);
  assert.ok(engineInfo(), 'the engine is running');
  assert.notEqual(engineInfo()?.provider, 'cpu');
});
