// PixtralImageProcessor (transformers 4.45.2) and the token layout PixtralProcessor expands an image into.
// Pixtral keeps each image near its own resolution: the image is scaled down (never up) to fit the longest
// edge, then each side is rounded UP to a whole number of patches and the image is stretched to that size
// (PIL bicubic), so one image is a rows x cols patch grid. In the prompt every grid row is `cols` [IMG]
// tokens closed by [IMG_BREAK], the last row by [IMG_END] (the Mistral format Pixtral was trained on).
import { ConfigError, InputError } from '../../errors';
import { resizePil, type ResampleFilter } from '../image/resize';
import { OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, toChwFloat } from '../image/transform';
import { assertRgbImage, type RgbImage } from '../image/types';
import { optBool, optNumber, optResample, optTriple, type Json } from './config';

export interface PixtralProcessorConfig {
  doResize: boolean;
  /** size.longest_edge: neither side ends up longer than this (before rounding up to patches). */
  longestEdge: number;
  patchSize: { height: number; width: number };
  resample: ResampleFilter;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  mean: readonly number[];
  std: readonly number[];
}

/** HF defaults for a tower of `patch` px patches that takes images up to `longestEdge` px (Pixtral-12B: 1024, 16). */
export function pixtralProcessorConfig(opts: { longestEdge?: number; patchSize?: number } = {}): PixtralProcessorConfig {
  const p = opts.patchSize ?? 16;
  return {
    doResize: true,
    longestEdge: opts.longestEdge ?? 1024,
    patchSize: { height: p, width: p },
    resample: 'bicubic',
    doRescale: true,
    rescaleFactor: 1 / 255,
    doNormalize: true,
    mean: OPENAI_CLIP_MEAN,
    std: OPENAI_CLIP_STD,
  };
}

function posInt(v: unknown, key: string, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new ConfigError(`${where}: "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/** Reads a PixtralImageProcessor `preprocessor_config.json` (defaults as in transformers 4.45.2). */
export function parsePixtralProcessorConfig(json: Json, where = 'preprocessor_config.json'): PixtralProcessorConfig {
  const d = pixtralProcessorConfig();
  const size = json.size;
  let longestEdge = d.longestEdge;
  if (size !== undefined && size !== null) {
    if (typeof size === 'number') longestEdge = posInt(size, 'size', where);
    else if (typeof size === 'object' && (size as Json).longest_edge !== undefined) longestEdge = posInt((size as Json).longest_edge, 'size.longest_edge', where);
    else throw new ConfigError(`${where}: "size" must be {"longest_edge": N} for PixtralImageProcessor, got ${JSON.stringify(size)}`);
  }
  let patchSize = d.patchSize;
  const ps = json.patch_size;
  if (ps !== undefined && ps !== null) {
    if (typeof ps === 'number') patchSize = { height: posInt(ps, 'patch_size', where), width: posInt(ps, 'patch_size', where) };
    else if (typeof ps === 'object') {
      const o = ps as Json;
      patchSize = { height: posInt(o.height, 'patch_size.height', where), width: posInt(o.width, 'patch_size.width', where) };
    } else throw new ConfigError(`${where}: "patch_size" must be an int or {"height", "width"}, got ${JSON.stringify(ps)}`);
  }
  return {
    doResize: optBool(json, 'do_resize', where) ?? true,
    longestEdge,
    patchSize,
    resample: optResample(json, 'resample', where) ?? 'bicubic',
    doRescale: optBool(json, 'do_rescale', where) ?? true,
    rescaleFactor: optNumber(json, 'rescale_factor', where) ?? 1 / 255,
    doNormalize: optBool(json, 'do_normalize', where) ?? true,
    mean: optTriple(json, 'image_mean', where) ?? OPENAI_CLIP_MEAN,
    std: optTriple(json, 'image_std', where) ?? OPENAI_CLIP_STD,
  };
}

/**
 * HF 4.45.2 `get_resize_output_image_size`: scale by 1/ratio when a side exceeds the longest edge, rounding
 * UP (`np.ceil`; transformers >= 4.47 floors instead, which can change the grid by one patch), then each side
 * up to a multiple of the patch. Returns [height, width].
 */
export function pixtralOutputSize(height: number, width: number, longestEdge: number, patch: { height: number; width: number }): [number, number] {
  if (!Number.isInteger(height) || !Number.isInteger(width) || height <= 0 || width <= 0)
    throw new InputError(`pixtralOutputSize: image size must be positive integers, got ${height}x${width}`);
  let h = height;
  let w = width;
  const ratio = Math.max(h / longestEdge, w / longestEdge);
  if (ratio > 1) {
    h = Math.ceil(h / ratio);
    w = Math.ceil(w / ratio);
  }
  return [(Math.floor((h - 1) / patch.height) + 1) * patch.height, (Math.floor((w - 1) / patch.width) + 1) * patch.width];
}

/** Where the tokens of one Pixtral image sit: a rows x cols patch grid, each row closed by one break token. */
export interface PixtralImageLayout {
  kind: 'pixtral';
  /** Processed image size [height, width] in pixels (HF `image_sizes`). */
  imageSize: [number, number];
  rows: number;
  cols: number;
  /** rows * (cols + 1): the [IMG] tokens plus one [IMG_BREAK] per row ([IMG_END] for the last). */
  numTokens: number;
}

export function pixtralImageLayout(imageSize: readonly [number, number], patch: number | { height: number; width: number }): PixtralImageLayout {
  const ph = typeof patch === 'number' ? patch : patch.height;
  const pw = typeof patch === 'number' ? patch : patch.width;
  const [h, w] = imageSize;
  if (!Number.isInteger(h / ph) || !Number.isInteger(w / pw) || h <= 0 || w <= 0)
    throw new InputError(`Pixtral image size ${h}x${w} is not a positive multiple of the ${ph}x${pw} patch: give the processed size (HF image_sizes)`);
  const rows = h / ph;
  const cols = w / pw;
  return { kind: 'pixtral', imageSize: [h, w], rows, cols, numTokens: rows * (cols + 1) };
}

/** The prompt tokens of one image as PixtralProcessor writes them. */
export function pixtralImageTokenIds(layout: PixtralImageLayout, ids: { image: number; imageBreak: number; imageEnd: number }): number[] {
  const out: number[] = [];
  for (let r = 0; r < layout.rows; r++) {
    for (let c = 0; c < layout.cols; c++) out.push(ids.image);
    out.push(r === layout.rows - 1 ? ids.imageEnd : ids.imageBreak);
  }
  return out;
}

/** Offsets (from the span start) of the [IMG] tokens of an image, row-major: patch k of the grid sits at [k]. */
export function pixtralPatchOffsets(layout: PixtralImageLayout): number[] {
  const out: number[] = [];
  for (let r = 0; r < layout.rows; r++) for (let c = 0; c < layout.cols; c++) out.push(r * (layout.cols + 1) + c);
  return out;
}

export interface PixtralPixels {
  /** [3, h, w] float32 CHW. */
  pixelValues: Float32Array;
  shape: [number, number, number];
  /** Processed [height, width] (HF `image_sizes`). */
  imageSize: [number, number];
  layout: PixtralImageLayout;
  /** The uint8 image after the resize. */
  resized: RgbImage;
}

/** PixtralImageProcessor for one image: resize to the patch-aligned size, rescale, normalise, CHW. */
export function pixtralPreprocess(img: RgbImage, cfg: PixtralProcessorConfig = pixtralProcessorConfig()): PixtralPixels {
  assertRgbImage(img, 'pixtral processor input');
  let resized = img;
  if (cfg.doResize) {
    const [h, w] = pixtralOutputSize(img.height, img.width, cfg.longestEdge, cfg.patchSize);
    resized = resizePil(img, w, h, cfg.resample);
  }
  const chw = toChwFloat(resized, { doRescale: cfg.doRescale, rescaleFactor: cfg.rescaleFactor, doNormalize: cfg.doNormalize, mean: cfg.mean, std: cfg.std });
  const imageSize: [number, number] = [chw.height, chw.width];
  return { pixelValues: chw.data, shape: [3, chw.height, chw.width], imageSize, layout: pixtralImageLayout(imageSize, cfg.patchSize), resized };
}

/**
 * Images of different sizes as one [n, C, maxH, maxW] buffer, each zero-padded at the bottom/right (the batch
 * layout of later transformers' `_pad_for_batching`), with `imageSizes` saying each image's real extent.
 */
export function padImagesToBatch(items: readonly { data: Float32Array; shape: readonly number[] }[]): {
  pixelValues: Float32Array;
  shape: [number, number, number, number];
  imageSizes: [number, number][];
} {
  if (items.length === 0) throw new InputError('padImagesToBatch: no images');
  const C = items[0].shape[0];
  items.forEach((it, i) => {
    if (it.shape.length !== 3 || it.shape[0] !== C || it.data.length !== it.shape[0] * it.shape[1] * it.shape[2])
      throw new InputError(`padImagesToBatch: image ${i} has shape [${it.shape}] (${it.data.length} values), expected [${C}, height, width]`);
  });
  const H = Math.max(...items.map((it) => it.shape[1]));
  const W = Math.max(...items.map((it) => it.shape[2]));
  const out = new Float32Array(items.length * C * H * W);
  items.forEach((it, n) => {
    const [, h, w] = it.shape;
    for (let c = 0; c < C; c++)
      for (let y = 0; y < h; y++) out.set(it.data.subarray((c * h + y) * w, (c * h + y + 1) * w), ((n * C + c) * H + y) * W);
  });
  return { pixelValues: out, shape: [items.length, C, H, W], imageSizes: items.map((it) => [it.shape[1], it.shape[2]]) };
}
