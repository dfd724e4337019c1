// `hopscope forward`: runs a model on a fixture-format inputs.json and writes logits, HF-indexed hidden
// states and (optionally) greedy tokens as JSON — the parity check a user can run on any folder.
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../errors';
import type { Model, ModelInputs } from '../models/model';

type Nested = number | Nested[];

export function shapeOf(x: Nested): number[] {
  const s: number[] = [];
  let y: Nested = x;
  while (Array.isArray(y)) {
    s.push(y.length);
    y = y[0];
  }
  return s;
}

function toTensor(x: Nested, what: string): tf.Tensor {
  const shape = shapeOf(x);
  const flat = (x as Nested[]).flat(Infinity as 1) as unknown as number[];
  if (flat.length !== shape.reduce((a, b) => a * b, 1)) throw new InputError(`${what} is a ragged array (shape ${JSON.stringify(shape)})`);
  return tf.tensor(flat, shape, 'float32');
}

/** Reads the fixtures' inputs.json format (see ../shared/fixtures/hf/README.md); `variant` picks `left`/`right` in padded files. */
export function parseInputs(raw: Record<string, unknown>, variant?: string): ModelInputs {
  let src = raw;
  if (variant) {
    if (typeof raw[variant] !== 'object') throw new InputError(`inputs file has no "${variant}" section`);
    src = { ...raw, ...(raw[variant] as Record<string, unknown>) };
  } else if (!raw.input_ids && raw.left) src = { ...raw, ...(raw.left as Record<string, unknown>) };
  if (!Array.isArray(src.input_ids)) throw new InputError('inputs file needs "input_ids" as a [batch][tokens] array');
  const inputs: ModelInputs = {
    inputIds: src.input_ids as number[][],
    attentionMask: src.attention_mask as number[][] | undefined,
  };
  if (src.pixel_values) inputs.pixelValues = toTensor(src.pixel_values as Nested, 'pixel_values');
  if (src.image_sizes) inputs.imageSizes = src.image_sizes as [number, number][];
  if (src.image_grid_thw) inputs.imageGridThw = src.image_grid_thw as [number, number, number][];
  if (src.position_ids) inputs.positionIds = src.position_ids as number[][] | number[][][];
  return inputs;
}

export interface ForwardJson {
  logits: number[][][];
  hidden_states: number[][][][];
  new_tokens?: number[][];
}

function nest(data: Float32Array, shape: number[]): Nested {
  if (shape.length === 1) return Array.from(data);
  const step = data.length / shape[0];
  return Array.from({ length: shape[0] }, (_, i) => nest(data.subarray(i * step, (i + 1) * step), shape.slice(1)));
}

export function runForward(model: Model, inputs: ModelInputs, generate = 0): ForwardJson {
  const L = model.numLayers;
  const names = [...Array.from({ length: L }, (_, i) => `lm.blocks.${i}.resid_pre`), 'lm.final_norm'];
  const out = model.forward(inputs, { cache: names });
  try {
    const json: ForwardJson = {
      logits: nest(out.logits!.dataSync() as Float32Array, out.logits!.shape) as number[][][],
      hidden_states: names.map((n) => {
        const t = out.cache.get(n)!;
        return nest(t.dataSync() as Float32Array, t.shape) as number[][][];
      }),
    };
    if (generate > 0) json.new_tokens = model.generate(inputs, { maxNewTokens: generate }).newTokens;
    return json;
  } finally {
    out.dispose();
  }
}

export function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new InputError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
}
