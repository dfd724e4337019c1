// The worked example of docs/adding-a-family.md: a toy family from one file (examples/family/toy-vlm.ts) plus one
// registration loads a checkpoint whose config.json names its model_type, and the experiments run on it.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { toyVlm } from '../../examples/family/toy-vlm';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { ConfigError } from '../../src/errors';
import { runExperiment } from '../../src/experiments';
import { loadModelFromDir, registerFamily, supportedModelTypes, unregisterFamily } from '../../src/models/load';
import type { Model } from '../../src/models/model';
import { FIXTURES, syntheticPrompts } from '../experiments/fixture-data';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-family-'));
const dir = path.join(tmp, 'toy');
let model: Model;

before(async () => {
  await initEngine();
  // Fixture A's weights under a config whose model_type is the toy's.
  const src = path.join(FIXTURES, 'llava_tiny_A');
  fs.mkdirSync(dir);
  for (const f of fs.readdirSync(src)) if (f !== 'config.json') fs.symlinkSync(path.join(src, f), path.join(dir, f));
  const config = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, model_type: 'toy_vlm' }));
});
after(() => {
  model?.dispose();
  unregisterFamily('toy_vlm');
  fs.rmSync(tmp, { recursive: true, force: true });
  shutdownEngine();
});

test('unregistered, the model_type is refused with the supported ones listed', () => {
  assert.throws(() => loadModelFromDir(dir), (e: unknown) => e instanceof ConfigError && /model_type "toy_vlm" is not supported \(supported: .*llava/.test((e as Error).message));
});

test('one registration: the family loads, and a model_type cannot be registered twice', () => {
  registerFamily('toy_vlm', toyVlm);
  assert.ok(supportedModelTypes().includes('toy_vlm'));
  assert.throws(() => registerFamily('toy_vlm', toyVlm), /already has a family/);
  model = loadModelFromDir(dir);
  assert.equal(model.imageInput, toyVlm.imageInput);
});

test('recall-gap and logit-lens run on the toy family', async () => {
  const data = syntheticPrompts(['tok223 tok251', 'tok65 tok291', 'tok5 tok6']);
  const gap = await runExperiment({ kind: 'recall-gap', version: 1, identify: false, maxNewTokens: 3 }, { model, data });
  assert.ok(gap.table.numRows() > 0);
  assert.ok(Number.isFinite(gap.summary.textAcc as number));
  const lens = await runExperiment({ kind: 'logit-lens', version: 1, topK: 2, limit: 1, positions: 'last' }, { model, data });
  assert.equal(lens.table.numRows(), model.numLayers * 2);
});
