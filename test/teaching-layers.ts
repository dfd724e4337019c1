// The default teaching model's depth, read from its config.json: tests that print or count layers of `%load
// teaching` follow the shipped model instead of a number written into each of them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TEACHING_DIR } from '../src/data/teaching-models';
import { recordedRecipe } from '../src/train/host-io';

export const TEACHING_LAYERS: number = (JSON.parse(fs.readFileSync(path.join(TEACHING_DIR, 'config.json'), 'utf8')) as { text_config: { num_hidden_layers: number } })
  .text_config.num_hidden_layers;

/**
 * The first block a teaching VLM's readout tuned (`readout.from` of the recipe its weights record): the blocks below
 * it are the backbone's own, so there its text run computes what the backbone computes.
 */
export function readoutFrom(modelDir: string): number {
  const recorded = recordedRecipe(path.join(modelDir, 'model.safetensors'));
  const from = (JSON.parse(recorded ?? '{}') as { recipe?: { readout?: { from?: number } } }).recipe?.readout?.from;
  if (typeof from !== 'number') throw new Error(`${modelDir}: its weights record no readout.from (recipe: ${recorded ?? 'none'})`);
  return from;
}
