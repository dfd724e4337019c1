// Batches of prompts: left-padded ids and mask (so generation can append), the rows' geometry for
// selectors (spans + padding offset), and the images of the rows stacked in row order.
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../errors';
import { padImagesToBatch } from '../io/processors';
import type { RowGeometry } from '../interventions/selectors';
import type { Model, ModelInputs } from '../models/model';
import { imagePrepFor, type PixelInput } from './assets';
import type { RgbImage } from '../io/image';
import type { PromptCase, PromptSource } from './source';

export interface Batch {
  cases: PromptCase[];
  inputs: ModelInputs;
  rows: RowGeometry[];
  /** Padded prompt length. */
  T: number;
  /** Pixels of each row's image (null for text rows), for running a row on its own. */
  pixelRows: (PixelInput | null)[];
  dispose(): void;
}

export function padId(model: Model): number {
  const eos = model.text.eosTokenId;
  return model.text.padTokenId ?? (Array.isArray(eos) ? eos[0] : eos) ?? 0;
}

/** LLaVA-NeXT images [1, crops, C, H, W] with different crop counts: zero-filled to the most crops (HF `_pad_for_batching`). */
function padCrops(pix: PixelInput[]): PixelInput[] {
  if (!pix.every((p) => p.shape.length === 5)) return pix;
  const most = Math.max(...pix.map((p) => p.shape[1]));
  return pix.map((p) => {
    if (p.shape[1] === most) return p;
    const per = p.shape[2] * p.shape[3] * p.shape[4];
    const data = new Float32Array(most * per);
    data.set(p.data);
    return { ...p, data, shape: [1, most, ...p.shape.slice(2)] };
  });
}

/**
 * Pixels of several images as one model input, in order: equal shapes stacked, LLaVA-NeXT crops zero-filled to
 * the most crops, Qwen2-VL patches concatenated, native-resolution images (Pixtral, [1, C, h, w] with their
 * processed `imageSize`) zero-padded to the largest height and width.
 */
export function stackPixels(given: PixelInput[]): Pick<ModelInputs, 'pixelValues' | 'imageSizes' | 'imageGridThw'> {
  if (given.length === 0) return {};
  if (given.every((p) => p.shape.length === 4 && p.shape[0] === 1 && p.imageSize) && new Set(given.map((p) => p.shape.slice(2).join('x'))).size > 1) {
    const b = padImagesToBatch(given.map((p) => ({ data: p.data, shape: p.shape.slice(1) })));
    return { pixelValues: tf.tensor(b.pixelValues, b.shape), imageSizes: given.map((p) => p.imageSize!) };
  }
  const pix = padCrops(given);
  const rest = pix[0].shape.slice(1);
  const same = pix.every((p) => p.shape.length === rest.length + 1 && p.shape.slice(1).every((d, i) => d === rest[i]));
  const lead = pix.reduce((a, p) => a + p.shape[0], 0);
  if (!same) {
    // Qwen2-VL flattened patches differ in count per image but share the row width: concatenate along axis 0.
    if (!pix.every((p) => p.shape.length === 2 && p.shape[1] === pix[0].shape[1]))
      throw new InputError(`images of one batch must share their processed shape (got ${pix.map((p) => `[${p.shape}]`).join(', ')}); batch them separately`);
  }
  const data = new Float32Array(pix.reduce((a, p) => a + p.data.length, 0));
  let o = 0;
  for (const p of pix) {
    data.set(p.data, o);
    o += p.data.length;
  }
  const out: Pick<ModelInputs, 'pixelValues' | 'imageSizes' | 'imageGridThw'> = { pixelValues: tf.tensor(data, [lead, ...rest]) };
  if (pix.every((p) => p.imageSize)) out.imageSizes = pix.map((p) => p.imageSize!);
  if (pix.every((p) => p.gridThw)) out.imageGridThw = pix.map((p) => p.gridThw!);
  return out;
}

/** Left-pads the prompts into one batch and loads their images. */
export async function makeBatch(model: Model, source: PromptSource, cases: PromptCase[]): Promise<Batch> {
  if (cases.length === 0) throw new InputError('makeBatch: no prompts');
  const T = Math.max(...cases.map((c) => c.inputIds.length));
  const pad = padId(model);
  const inputIds = cases.map((c) => [...new Array<number>(T - c.inputIds.length).fill(pad), ...c.inputIds]);
  const attentionMask = cases.map((c) => [...new Array<number>(T - c.inputIds.length).fill(0), ...new Array<number>(c.inputIds.length).fill(1)]);
  const rows = cases.map((c) => ({ spans: c.spans, offset: T - c.inputIds.length, promptLength: T }));
  const pixelRows = await Promise.all(cases.map((c) => (c.image ? source.pixels(c.image) : Promise.resolve(null))));
  const img = stackPixels(pixelRows.filter((p): p is PixelInput => p !== null));
  const inputs: ModelInputs = { inputIds, attentionMask, ...img };
  return {
    cases,
    inputs,
    rows,
    T,
    pixelRows,
    dispose: () => img.pixelValues?.dispose(),
  };
}

/** Row `b` of a batch on its own, without its padding (what a naive run feeds the model). */
export function rowInputs(batch: Batch, b: number): { inputs: ModelInputs; row: RowGeometry } {
  const g = batch.rows[b];
  const ids = batch.inputs.inputIds[b].slice(g.offset);
  const p = batch.pixelRows[b];
  const inputs: ModelInputs = { inputIds: [ids] };
  if (p) {
    Object.assign(inputs, stackPixels([p]));
  }
  return { inputs, row: { spans: g.spans, offset: 0, promptLength: ids.length } };
}

/** Splits a list into chunks of at most n. */
export function chunks<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

/**
 * Groups prompts so one batch holds images of one processed shape and similar lengths
 * (sorted by length: less padding), each group at most `n` prompts.
 */
export function batchesOf(cases: readonly PromptCase[], n: number): PromptCase[][] {
  const sorted = [...cases].sort((a, b) => a.inputIds.length - b.inputIds.length || (a.image ? 1 : 0) - (b.image ? 1 : 0));
  return chunks(sorted, n);
}

/**
 * Raw images → the model's image inputs through its family's own processor (imagePrepFor): pixel values plus
 * image sizes or grids, ready to merge into ModelInputs. Images are in prompt order (row by row).
 */
export function imageInputsFor(model: Model, images: readonly RgbImage[]): Pick<ModelInputs, 'pixelValues' | 'imageSizes' | 'imageGridThw'> {
  if (images.length === 0) return {};
  const prep = imagePrepFor(model);
  return stackPixels(images.map((img) => prep.prepare(img).pixels));
}
