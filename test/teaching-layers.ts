// The default teaching model's depth, read from its config.json: tests that print or count layers of `%load
// teaching` follow the shipped model instead of a number written into each of them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TEACHING_DIR } from '../src/data/teaching-models';

export const TEACHING_LAYERS: number = (JSON.parse(fs.readFileSync(path.join(TEACHING_DIR, 'config.json'), 'utf8')) as { text_config: { num_hidden_layers: number } })
  .text_config.num_hidden_layers;
