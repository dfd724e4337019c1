// LLaVA-NeXT (LLaVA-1.6) "anyres": LlavaNextImageProcessor and the token bookkeeping of
// LlavaNextForConditionalGeneration.pack_image_features, following transformers 4.45.2.
import { ConfigError, InputError } from '../../errors';
import { resizePil } from '../image/resize';
import { crop, padImage } from '../image/transform';
import { ChwImage, RgbImage, assertRgbImage } from '../image/types';
import { ClipProcessorConfig, clipPreprocess, llava15ProcessorConfig, parseClipProcessorConfig } from './clip';
import { Json } from './config';

/** [height, width] pairs, as HF `image_grid_pinpoints` stores them. */
export type Pinpoints = readonly (readonly [number, number])[];

export interface AnyresProcessorConfig extends ClipProcessorConfig {
  gridPinpoints: Pinpoints;
}

export function parsePinpoints(v: unknown, where: string): Pinpoints {
  if (
    !Array.isArray(v) ||
    v.length === 0 ||
    v.some((p) => !Array.isArray(p) || p.length !== 2 || p.some((x: unknown) => typeof x !== 'number' || !Number.isInteger(x) || x <= 0))
  )
    throw new ConfigError(`${where}: "image_grid_pinpoints" must be a non-empty list of [height, width] positive ints, got ${JSON.stringify(v)}`);
  return (v as number[][]).map((p) => [p[0], p[1]] as const);
}

/** LLaVA-1.6 defaults for a given crop size (px) and pinpoints: LLaVA-1.5's CLIP preprocessing plus the grid. */
export function llavaNextProcessorConfig(px: number, gridPinpoints: Pinpoints): AnyresProcessorConfig {
  return { ...llava15ProcessorConfig(px), gridPinpoints };
}

export function parseAnyresProcessorConfig(json: Json, where = 'preprocessor_config.json'): AnyresProcessorConfig {
  const base = parseClipProcessorConfig(json, where);
  const pins =
    json.image_grid_pinpoints === undefined
      ? ([[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]] as const)
      : parsePinpoints(json.image_grid_pinpoints, where);
  return { ...base, gridPinpoints: pins };
}

/**
 * HF `select_best_resolution`: the pinpoint keeping the most effective pixels after an
 * aspect-preserving downscale, ties broken by the least wasted area (first one wins on equal).
 * Sizes are [height, width].
 */
export function selectBestResolution(height: number, width: number, pinpoints: Pinpoints): [number, number] {
  let best: [number, number] | null = null;
  let maxEffective = 0;
  let minWasted = Infinity;
  for (const [h, w] of pinpoints) {
    const scale = Math.min(w / width, h / height);
    const dw = Math.trunc(width * scale);
    const dh = Math.trunc(height * scale);
    const effective = Math.min(dw * dh, width * height);
    const wasted = w * h - effective;
    if (effective > maxEffective || (effective === maxEffective && wasted < minWasted)) {
      maxEffective = effective;
      minWasted = wasted;
      best = [h, w];
    }
  }
  if (!best) throw new InputError(`selectBestResolution: no pinpoint fits a ${height}x${width} image`);
  return best;
}

/** HF `_get_patch_output_size`: aspect-preserving fit inside the target, the other side rounded up. */
export function patchOutputSize(height: number, width: number, target: readonly [number, number]): [number, number] {
  const [th, tw] = target;
  const sw = tw / width;
  const sh = th / height;
  if (sw < sh) return [Math.min(Math.ceil(height * sw), th), tw];
  return [th, Math.min(Math.ceil(width * sh), tw)];
}

export interface AnyresPixels {
  /** [numCrops, 3, H, W]: crop 0 is the whole image squashed, then the tiles row-major. */
  pixelValues: Float32Array;
  shape: [number, number, number, number];
  /** Original [height, width] (HF `image_sizes`). */
  imageSize: [number, number];
  bestResolution: [number, number];
  /** uint8 intermediates: aspect-kept resize, its black-padded version, the squashed base image. */
  resized: RgbImage;
  padded: RgbImage;
  base: RgbImage;
}

/**
 * LlavaNextImageProcessor for one image. Padding splits an odd remainder to the bottom/right
 * (transformers >= 4.52 and the original LLaVA-NeXT code); 4.45.2 crashes on odd remainders, and
 * agrees everywhere else.
 */
export function llavaNextPreprocess(img: RgbImage, cfg: AnyresProcessorConfig): AnyresPixels {
  assertRgbImage(img, 'llava-next processor input');
  const best = selectBestResolution(img.height, img.width, cfg.gridPinpoints);
  const [nh, nw] = patchOutputSize(img.height, img.width, best);
  const resized = resizePil(img, nw, nh, cfg.resample);
  const padY = Math.floor((best[0] - nh) / 2);
  const padX = Math.floor((best[1] - nw) / 2);
  const padded = padImage(resized, { top: padY, bottom: best[0] - nh - padY, left: padX, right: best[1] - nw - padX });
  const tile = cfg.cropSize.height;
  // HF squashes the whole image to (shortest_edge, shortest_edge) for the base crop.
  const baseSide = 'shortestEdge' in cfg.size ? cfg.size.shortestEdge : cfg.size.height;
  const baseW = 'shortestEdge' in cfg.size ? baseSide : cfg.size.width;
  const base = resizePil(img, baseW, baseSide, cfg.resample);
  const crops: RgbImage[] = [base];
  for (let y = 0; y < padded.height; y += tile)
    for (let x = 0; x < padded.width; x += tile)
      crops.push(crop(padded, x, y, Math.min(tile, padded.width - x), Math.min(tile, padded.height - y)));
  // Every crop then runs the plain CLIP pipeline (resize shortest edge, centre crop, normalise).
  const chw: ChwImage[] = crops.map((c) => clipPreprocess(c, { ...cfg, padToSquare: false }));
  const { channels, height, width } = chw[0];
  const per = channels * height * width;
  const pixelValues = new Float32Array(per * chw.length);
  chw.forEach((c, i) => {
    if (c.height !== height || c.width !== width)
      throw new InputError(`llavaNextPreprocess: crop ${i} came out ${c.height}x${c.width}, expected ${height}x${width}`);
    pixelValues.set(c.data, i * per);
  });
  return {
    pixelValues,
    shape: [chw.length, channels, height, width],
    imageSize: [img.height, img.width],
    bestResolution: best,
    resized,
    padded,
    base,
  };
}

/** HF `_pad_for_batching`: [n, maxCrops, 3, H, W], images with fewer crops zero-filled at the end. */
export function batchAnyres(items: readonly AnyresPixels[]): {
  pixelValues: Float32Array;
  shape: [number, number, number, number, number];
  imageSizes: [number, number][];
} {
  if (items.length === 0) throw new InputError('batchAnyres: no images');
  const [, c, h, w] = items[0].shape;
  const maxCrops = Math.max(...items.map((it) => it.shape[0]));
  const per = c * h * w;
  const pixelValues = new Float32Array(items.length * maxCrops * per);
  items.forEach((it, i) => {
    if (it.shape[1] !== c || it.shape[2] !== h || it.shape[3] !== w)
      throw new InputError(`batchAnyres: image ${i} has crops ${it.shape.slice(1).join('x')}, expected ${c}x${h}x${w}`);
    pixelValues.set(it.pixelValues, i * maxCrops * per);
  });
  return { pixelValues, shape: [items.length, maxCrops, c, h, w], imageSizes: items.map((it) => it.imageSize) };
}

/** Model-side settings that decide the token count (from the LLaVA-NeXT config.json). */
export interface AnyresModelConfig {
  gridPinpoints: Pinpoints;
  /** vision_config.image_size: crop side in pixels. */
  visionImageSize: number;
  /** vision_config.patch_size. */
  patchSize: number;
  /**
   * How `unpad_image` rounds the kept size: 'trunc' = int(x) (transformers <= 4.46, the fixtures),
   * 'round7' = int(round(x, 7)) (transformers >= 4.47). They differ only when x is a hair below an integer.
   */
  unpadRounding?: 'trunc' | 'round7';
}

export function parseAnyresModelConfig(config: Json, where = 'config.json'): AnyresModelConfig {
  const vc = config.vision_config;
  if (!vc || typeof vc !== 'object') throw new ConfigError(`${where}: "vision_config" is missing`);
  const v = vc as Json;
  const imageSize = v.image_size ?? 224;
  const patchSize = v.patch_size ?? 32;
  if (typeof imageSize !== 'number' || typeof patchSize !== 'number')
    throw new ConfigError(`${where}: vision_config.image_size / patch_size must be numbers`);
  const strategy = config.vision_feature_select_strategy ?? 'default';
  if (strategy !== 'default')
    throw new ConfigError(
      `${where}: vision_feature_select_strategy "${String(strategy)}" is not supported for anyres (transformers' LLaVA-NeXT only packs 'default')`,
    );
  return { gridPinpoints: parsePinpoints(config.image_grid_pinpoints, where), visionImageSize: imageSize, patchSize };
}

/** Where each image token of an anyres image comes from; plain JSON. */
export interface AnyresLayout {
  kind: 'anyres';
  imageSize: [number, number];
  bestResolution: [number, number];
  /** Crop tiles (HF `get_anyres_image_grid_shape`). */
  gridRows: number;
  gridCols: number;
  /** Features per crop side: image_size / patch_size. */
  featureGrid: number;
  /** The base crop's feature grid (g x g), packed first. */
  baseRows: number;
  baseCols: number;
  /** The tiles' feature map before unpadding: [gridRows*g, gridCols*g]. */
  fullRows: number;
  fullCols: number;
  /** Half-open ranges of the full feature map kept by `unpad_image`. */
  keptRows: [number, number];
  keptCols: [number, number];
  unpaddedRows: number;
  unpaddedCols: number;
  /** g² base-crop features first. */
  baseTokens: number;
  /** Each kept row is followed by one image_newline: row r occupies unpaddedCols+1 tokens. */
  newlineTokens: number;
  /** Tokens per packed tile row including its newline: unpaddedCols + 1. */
  newlineEvery: number;
  /** baseTokens + unpaddedRows * (unpaddedCols + 1). (Anyres always has >= 1 tile, so HF's base-only branch never runs.) */
  numTokens: number;
}

function unpadInt(x: number, rounding: 'trunc' | 'round7'): number {
  return rounding === 'trunc' ? Math.trunc(x) : Math.trunc(Math.round(x * 1e7) / 1e7);
}

/**
 * Token bookkeeping of `pack_image_features` for one image of original size [height, width]:
 * best pinpoint -> tile grid -> feature map -> `unpad_image` -> newline per kept row.
 */
export function anyresLayout(imageSize: readonly [number, number], cfg: AnyresModelConfig): AnyresLayout {
  const [oh, ow] = imageSize;
  if (!Number.isInteger(oh) || !Number.isInteger(ow) || oh <= 0 || ow <= 0)
    throw new InputError(`anyresLayout: image size must be positive integers [height, width], got ${JSON.stringify(imageSize)}`);
  if (!Number.isInteger(cfg.visionImageSize / cfg.patchSize))
    throw new ConfigError(`anyresLayout: image_size ${cfg.visionImageSize} is not a multiple of patch_size ${cfg.patchSize}`);
  const g = cfg.visionImageSize / cfg.patchSize;
  const best = selectBestResolution(oh, ow, cfg.gridPinpoints);
  const gridRows = Math.floor(best[0] / cfg.visionImageSize);
  const gridCols = Math.floor(best[1] / cfg.visionImageSize);
  const fullRows = gridRows * g;
  const fullCols = gridCols * g;
  let keptRows: [number, number] = [0, fullRows];
  let keptCols: [number, number] = [0, fullCols];
  const rounding = cfg.unpadRounding ?? 'trunc';
  if (ow / oh > fullCols / fullRows) {
    const newH = unpadInt(oh * (fullCols / ow), rounding);
    const pad = Math.floor((fullRows - newH) / 2);
    keptRows = [pad, fullRows - pad];
  } else {
    const newW = unpadInt(ow * (fullRows / oh), rounding);
    const pad = Math.floor((fullCols - newW) / 2);
    keptCols = [pad, fullCols - pad];
  }
  const unpaddedRows = keptRows[1] - keptRows[0];
  const unpaddedCols = keptCols[1] - keptCols[0];
  const baseTokens = g * g;
  const newlineTokens = unpaddedRows;
  const numTokens = baseTokens + unpaddedRows * (unpaddedCols + 1);
  return {
    kind: 'anyres',
    imageSize: [oh, ow],
    bestResolution: best,
    gridRows,
    gridCols,
    featureGrid: g,
    baseRows: g,
    baseCols: g,
    fullRows,
    fullCols,
    keptRows,
    keptCols,
    unpaddedRows,
    unpaddedCols,
    baseTokens,
    newlineTokens,
    newlineEvery: unpaddedCols + 1,
    numTokens,
  };
}
