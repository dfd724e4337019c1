// `hopscope forward`: runs a model on a fixture-format inputs.json and writes logits, HF-indexed hidden
// states and (optionally) greedy tokens as JSON — the parity check a user can run on any folder.
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../errors';
import { imageInputsFor } from '../experiments/batch';
import { rgbFromNested, type RgbImage } from '../io/image';
import { padImagesToBatch } from '../io/processors';
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

function isRagged(x: Nested): boolean {
  const shape = shapeOf(x);
  return (x as Nested[]).flat(Infinity as 1).length !== shape.reduce((a, b) => a * b, 1);
}

/** The [C][H][W] images of a ragged nested list (per row, per image, each image at its own size), in order. */
function chwLeaves(x: Nested, what: string): { data: Float32Array; shape: number[] }[] {
  const s = shapeOf(x);
  if (s.length === 3) {
    if (isRagged(x)) throw new InputError(`${what}: an image is itself ragged (shape ${JSON.stringify(s)})`);
    return [{ data: Float32Array.from((x as Nested[]).flat(Infinity as 1) as unknown as number[]), shape: s }];
  }
  if (s.length < 3) throw new InputError(`${what} must nest [C][H][W] images (per row and image), got depth ${s.length}`);
  return (x as Nested[]).flatMap((y, i) => chwLeaves(y, `${what}[${i}]`));
}

/**
 * pixel_values: one array when rectangular; a ragged one (the second-round fixtures' per row, per image [C][H][W]
 * of native-resolution images) becomes the images zero-padded to the largest, with each image's [height, width].
 */
function pixelsOf(x: Nested): { pixelValues: tf.Tensor; imageSizes?: [number, number][] } {
  if (!isRagged(x)) return { pixelValues: toTensor(x, 'pixel_values') };
  const b = padImagesToBatch(chwLeaves(x, 'pixel_values'));
  return { pixelValues: tf.tensor(b.pixelValues, b.shape), imageSizes: b.imageSizes };
}

/** image_sizes as [images][2], also when written per row ([rows][images][2]). */
function imageSizesOf(x: Nested): [number, number][] {
  const s = shapeOf(x);
  const flat = s.length === 3 ? (x as Nested[][]).flat(1) : (x as Nested[]);
  if (shapeOf(flat as Nested).length !== 2 || flat.some((p) => !Array.isArray(p) || p.length !== 2))
    throw new InputError(`image_sizes must be [images][2] or [rows][images][2], got shape ${JSON.stringify(s)}`);
  return flat as [number, number][];
}

function sectionOf(raw: Record<string, unknown>, variant?: string): Record<string, unknown> {
  if (variant) {
    if (typeof raw[variant] !== 'object') throw new InputError(`inputs file has no "${variant}" section`);
    return { ...raw, ...(raw[variant] as Record<string, unknown>) };
  }
  return !raw.input_ids && raw.left ? { ...raw, ...(raw.left as Record<string, unknown>) } : raw;
}

/** Reads the fixtures' inputs.json format (see test/fixtures/hf/README.md and hf2/README.md); `variant` picks `left`/`right` in padded files. */
export function parseInputs(raw: Record<string, unknown>, variant?: string): ModelInputs {
  const src = sectionOf(raw, variant);
  if (!Array.isArray(src.input_ids)) throw new InputError('inputs file needs "input_ids" as a [batch][tokens] array');
  const inputs: ModelInputs = {
    inputIds: src.input_ids as number[][],
    attentionMask: src.attention_mask as number[][] | undefined,
  };
  if (src.pixel_values) Object.assign(inputs, pixelsOf(src.pixel_values as Nested));
  if (src.image_sizes) inputs.imageSizes = imageSizesOf(src.image_sizes as Nested);
  if (src.image_grid_thw) inputs.imageGridThw = src.image_grid_thw as [number, number, number][];
  if (src.position_ids) inputs.positionIds = src.position_ids as number[][] | number[][][];
  return inputs;
}

/** `raw_images_uint8_hwc` ([images][h][w][3], or [rows][images][h][w][3]) as RGB images in prompt order. */
export function rawImagesOf(src: Record<string, unknown>): RgbImage[] {
  const raw = src.raw_images_uint8_hwc as Nested | undefined;
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new InputError('raw_images_uint8_hwc must be a list of [height][width][3] uint8 images');
  const depth = shapeOf(raw).length;
  if (depth !== 4 && depth !== 5) throw new InputError(`raw_images_uint8_hwc must be [images][h][w][3] or [rows][images][h][w][3], got depth ${depth}`);
  const images = (depth === 5 ? (raw as Nested[][]).flat(1) : raw) as unknown as number[][][][];
  return images.map((im, i) => rgbFromNested(im, `raw_images_uint8_hwc image ${i}`));
}

/**
 * The model inputs of an inputs.json: its pixel values when it has them, else its raw uint8 images through the
 * model family's own image processor (the same one experiments use).
 */
export function readForwardInputs(model: Model, raw: Record<string, unknown>, variant?: string): ModelInputs {
  const inputs = parseInputs(raw, variant);
  if (!inputs.pixelValues && !inputs.imageFeatures) Object.assign(inputs, imageInputsFor(model, rawImagesOf(sectionOf(raw, variant))));
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
