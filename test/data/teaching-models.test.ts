// The teaching models' names (src/data/teaching-models.ts): every name is a shipped HF folder; the early / late
// pair shares one backbone, which its configs name; each shipped model records the recipe that made it, and
// the pair's are the recipe files in data/teaching/recipes (so `src/train/cli.ts --recipe` reproduces them).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { isTeachingModel, TEACHING_COMPARE_DIR, TEACHING_DIR, TEACHING_MODELS, TEACHING_ROOT, teachingModelDir } from '../../src/data/teaching-models';
import { backboneDirOf } from '../../src/experiments';
import { backboneMetadata, recipeMetadata, resolveRecipe, type TeachingRecipe } from '../../src/train/teaching';
import { recordedRecipe } from '../../src/train/host-io';


test('every teaching model name is a shipped HF folder; `teaching` is the late one, the demo compares the early one', () => {
  for (const [name, dir] of Object.entries(TEACHING_MODELS)) {
    assert.ok(fs.existsSync(path.join(dir, 'config.json')), `${name}: ${dir}/config.json`);
    assert.ok(fs.existsSync(path.join(dir, 'model.safetensors')), `${name}: ${dir}/model.safetensors`);
    assert.equal(teachingModelDir(name), dir);
  }
  assert.equal(TEACHING_DIR, TEACHING_MODELS['teaching-late']);
  assert.equal(TEACHING_COMPARE_DIR, TEACHING_MODELS['teaching-early']);
  // Only the names themselves, not what every object has.
  for (const notAName of ['constructor', 'toString', '__proto__', 'data/teaching/late']) {
    assert.equal(isTeachingModel(notAName), false, notAName);
    assert.equal(teachingModelDir(notAName), notAName);
  }
});

test('the early / late pair shares data/teaching/backbone; v5 keeps its own', () => {
  const shared = path.join(TEACHING_ROOT, 'backbone');
  for (const name of ['teaching-early', 'teaching-late'] as const) {
    const cfg = JSON.parse(fs.readFileSync(path.join(TEACHING_MODELS[name], 'config.json'), 'utf8')) as { hopscope_backbone?: string };
    assert.equal(cfg.hopscope_backbone, '../backbone', name);
    assert.equal(backboneDirOf(TEACHING_MODELS[name]), shared, name);
  }
  assert.equal(backboneDirOf(TEACHING_MODELS['teaching-v5']), path.join(TEACHING_MODELS['teaching-v5'], 'backbone'));
});

test('each shipped model records the recipe that made it: the pair, its recipe file; v5, the default recipe', () => {
  for (const m of ['early', 'late'] as const) {
    const recipe = JSON.parse(fs.readFileSync(path.join(TEACHING_ROOT, 'recipes', `${m}.json`), 'utf8')) as Partial<TeachingRecipe>;
    assert.equal(recordedRecipe(path.join(TEACHING_ROOT, m, 'model.safetensors')), recipeMetadata(0, resolveRecipe(recipe)).hopscope_recipe, m);
    // The shared backbone is the one each recipe's LM stage makes (same LM, stage and kernels).
    assert.equal(recordedRecipe(path.join(TEACHING_ROOT, 'backbone', 'model.safetensors')), backboneMetadata(0, resolveRecipe(recipe)).hopscope_recipe, `backbone of ${m}`);
  }
  assert.equal(recordedRecipe(path.join(TEACHING_MODELS['teaching-v5'], 'model.safetensors')), recipeMetadata(0, resolveRecipe()).hopscope_recipe);
});
