// `data` of an experiment → a PromptSource: the one place that knows both implementations (src/experiments/sources/),
// kept out of source.ts so the interface and its implementations do not import each other (issue 13's cycle).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadPopVQA } from '../data/popvqa';
import { InputError } from '../errors';
import type { Model } from '../models/model';
import { isPromptSource, type PromptSource } from './source';
import { datasetSource, isDataset } from './sources/dataset';
import { isRawPrompts, rawSource, readRawPrompts } from './sources/raw';

/** Turns the experiment's `data` (a source, a Dataset, raw prompts, or a folder path) into a PromptSource for `model`. */
export function toPromptSource(model: Model, data: unknown, opts: { template?: string | null } = {}): PromptSource {
  if (data == null) throw new InputError('this experiment needs data: a PopVQA-format folder (--data DIR), a Dataset, or pre-tokenised prompts');
  if (isPromptSource(data)) return data;
  if (typeof data === 'string') {
    const dir = path.resolve(data);
    if (fs.existsSync(path.join(dir, 'prompts.json'))) return rawSource(readRawPrompts(path.join(dir, 'prompts.json')));
    if (fs.existsSync(path.join(dir, 'entities.csv'))) {
      return datasetSource(model, loadPopVQA(dir), { template: opts.template ?? undefined });
    }
    throw new InputError(`${dir}: not a data folder (expected entities.csv + questions.csv, or prompts.json with pre-tokenised prompts)`);
  }
  if (isRawPrompts(data)) return rawSource(data);
  if (isDataset(data)) return datasetSource(model, data, { template: opts.template ?? undefined });
  throw new InputError('data is not a PromptSource, a PopVQA Dataset (loadPopVQA), raw prompts ({format: "hopscope-prompts"}), or a folder path');
}
