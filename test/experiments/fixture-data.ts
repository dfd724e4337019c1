// Shared by the intervention and experiment tests: the HF fixture models and a small synthetic
// PopVQA-style prompt set in their random vocabulary (pre-tokenised; results mean nothing, the
// pipeline must run).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { openCheckpoint } from '../../src/io/checkpoint';
import { LlavaModel } from '../../src/models/llava/model';
import { checkpointSource, loadModelFromDir } from '../../src/models/load';
import type { Model, ModelInputs } from '../../src/models/model';
import type { RawPrompts } from '../../src/experiments/sources/raw';

import { FIXTURES } from '../fixtures/paths';
export { FIXTURES };

export function fixtureJson(name: string, file: string): Record<string, any> {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, name, file), 'utf8'));
}

export function loadFixture(name: string): Model {
  return loadModelFromDir(path.join(FIXTURES, name));
}

/** Fixture A's weights with toyworld's image token (4): real toyworld prompts through a real LLaVA (numbers mean nothing). */
export function loadToyworldLlava(): LlavaModel {
  const dir = path.join(FIXTURES, 'llava_tiny_A');
  const config = { ...fixtureJson('llava_tiny_A', 'config.json'), image_token_index: 4 };
  const ckpt = openCheckpoint(dir);
  try {
    return LlavaModel.load(checkpointSource(ckpt), config);
  } finally {
    ckpt.close();
  }
}

export const IMG = 299;

/** A's two images and G's third, as [1, 3, 28, 28] arrays. */
export function fixtureImages(): number[][] {
  const a = fixtureJson('llava_tiny_A', 'inputs.json').pixel_values as number[][][][];
  const g = fixtureJson('llava_tiny_A_padded_G', 'inputs.json').pixel_values as number[][][][];
  return [a[0], a[1], g[2]].map((im) => im.flat(2));
}

export function pixels(images: number[][]): tf.Tensor {
  return tf.tensor(images.flat(), [images.length, 3, 28, 28]);
}

/** A's inputs (two rows of 26 tokens, 16 image tokens each). */
export function inputsA(): ModelInputs & { pixelValues: tf.Tensor } {
  const i = fixtureJson('llava_tiny_A', 'inputs.json');
  return { inputIds: i.input_ids, pixelValues: pixels(fixtureImages().slice(0, 2)) };
}

const imgTokens = () => new Array<number>(16).fill(IMG);

/**
 * Four entities (two celebs, a landmark, a brand), two views each (the second a brightened copy), an
 * identification prompt, two factual questions per modality (text ones name the entity: subject span),
 * chain-of-thought image questions. Entity names are the words the model's tokens decode to ("tokN").
 */
export function syntheticPrompts(names?: string[]): RawPrompts {
  const base = fixtureImages();
  const images: RawPrompts['images'] = {};
  const types = ['celebs', 'celebs', 'landmarks', 'brands'];
  const prompts: RawPrompts['prompts'] = [];
  const entities = types.map((type, i) => {
    const nameIds = [100 + 2 * i, 101 + 2 * i];
    images[`e${i}v0`] = { shape: [1, 3, 28, 28], data: base[i % 3].map((v) => v * (1 + 0.05 * i)) };
    images[`e${i}v1`] = { shape: [1, 3, 28, 28], data: base[i % 3].map((v) => v * (1.1 + 0.05 * i) + 0.01) };
    const e = `e${i}`;
    prompts.push({ entity: e, role: 'identify', modality: 'image', inputIds: [1, 126, 214, 28, ...imgTokens(), 183, 124, 211, 34, 18, 20], image: `e${i}v0` });
    prompts.push({ entity: e, role: 'view', modality: 'image', inputIds: [1, 126, 214, 28, ...imgTokens(), 183, 124, 211, 34, 18, 20], image: `e${i}v0`, split: 'train' });
    prompts.push({ entity: e, role: 'view', modality: 'image', inputIds: [1, 126, 214, 28, ...imgTokens(), 183, 124, 211, 34, 18, 20], image: `e${i}v1`, split: 'test' });
    for (const r of [0, 1]) {
      const answers = ['tok223 tok251'];
      prompts.push({ entity: e, role: 'question', modality: 'image', inputIds: [1, 50, 60, ...imgTokens(), 70 + r, 80, 90], image: `e${i}v0`, answers, relation: `r${r}` });
      prompts.push({ entity: e, role: 'question', modality: 'image', inputIds: [1, 50, 60, ...imgTokens(), 70 + r, 80, 90, 95, 96], image: `e${i}v0`, answers, relation: `r${r}`, cot: true });
      prompts.push({ entity: e, role: 'question', modality: 'text', inputIds: [1, 50, 60, ...nameIds, 70 + r, 80, 90], answers, relation: `r${r}`, subject: { start: 3, end: 5 } });
    }
    return { key: e, subject: names?.[i] ?? nameIds.map((n) => `tok${n}`).join(' '), aliases: [], type };
  });
  return { format: 'hopscope-prompts', version: 1, imageTokenId: IMG, entities, images, prompts };
}
