// Qwen2-VL image processor (transformers 4.45.2 Qwen2VLImageProcessor): smart_resize to multiples
// of patch*merge, PIL bicubic, rescale + normalise, then flatten into patches in 2x2 merge-window
// order with the single frame repeated temporal_patch_size times.
import { ConfigError, InputError } from '../../errors';
import { ResampleFilter, resizePil } from '../image/resize';
import { OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, toChwFloat } from '../image/transform';
import { ChwImage, RgbImage, assertRgbImage } from '../image/types';
import { Json, optBool, optNumber, optPositiveInt, optResample, optTriple } from './config';

export interface Qwen2VLProcessorConfig {
  patchSize: number;
  temporalPatchSize: number;
  mergeSize: number;
  minPixels: number;
  maxPixels: number;
  doResize: boolean;
  resample: ResampleFilter;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  mean: readonly number[];
  std: readonly number[];
}

/** Qwen2VLImageProcessor defaults (4.45.2). */
export function qwen2vlProcessorConfig(overrides: Partial<Qwen2VLProcessorConfig> = {}): Qwen2VLProcessorConfig {
  return {
    patchSize: 14,
    temporalPatchSize: 2,
    mergeSize: 2,
    minPixels: 56 * 56,
    maxPixels: 28 * 28 * 1280,
    doResize: true,
    resample: 'bicubic',
    doRescale: true,
    rescaleFactor: 1 / 255,
    doNormalize: true,
    mean: OPENAI_CLIP_MEAN,
    std: OPENAI_CLIP_STD,
    ...overrides,
  };
}

/**
 * From `preprocessor_config.json` and/or the model `config.json` (its vision_config gives
 * patch_size, spatial_merge_size, temporal_patch_size); the preprocessor file wins where both speak.
 */
export function parseQwen2VLProcessorConfig(preprocessor: Json = {}, modelConfig?: Json): Qwen2VLProcessorConfig {
  const where = 'preprocessor_config.json';
  const vc = (modelConfig?.vision_config ?? {}) as Json;
  const size = (preprocessor.size ?? {}) as Json;
  const d = qwen2vlProcessorConfig();
  const cfg: Qwen2VLProcessorConfig = {
    patchSize: optPositiveInt(preprocessor, 'patch_size', where) ?? optPositiveInt(vc, 'patch_size', 'config.json vision_config') ?? d.patchSize,
    temporalPatchSize:
      optPositiveInt(preprocessor, 'temporal_patch_size', where) ??
      optPositiveInt(vc, 'temporal_patch_size', 'config.json vision_config') ??
      d.temporalPatchSize,
    mergeSize:
      optPositiveInt(preprocessor, 'merge_size', where) ??
      optPositiveInt(vc, 'spatial_merge_size', 'config.json vision_config') ??
      d.mergeSize,
    minPixels: optPositiveInt(preprocessor, 'min_pixels', where) ?? optPositiveInt(size, 'min_pixels', `${where} size`) ?? d.minPixels,
    maxPixels: optPositiveInt(preprocessor, 'max_pixels', where) ?? optPositiveInt(size, 'max_pixels', `${where} size`) ?? d.maxPixels,
    doResize: optBool(preprocessor, 'do_resize', where) ?? d.doResize,
    resample: optResample(preprocessor, 'resample', where) ?? d.resample,
    doRescale: optBool(preprocessor, 'do_rescale', where) ?? d.doRescale,
    rescaleFactor: optNumber(preprocessor, 'rescale_factor', where) ?? d.rescaleFactor,
    doNormalize: optBool(preprocessor, 'do_normalize', where) ?? d.doNormalize,
    mean: optTriple(preprocessor, 'image_mean', where) ?? d.mean,
    std: optTriple(preprocessor, 'image_std', where) ?? d.std,
  };
  if (cfg.minPixels > cfg.maxPixels) throw new ConfigError(`${where}: min_pixels ${cfg.minPixels} exceeds max_pixels ${cfg.maxPixels}`);
  return cfg;
}

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const diff = x - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * HF `smart_resize`: both sides to multiples of `factor` (nearest, Python rounding), then scaled
 * down/up by sqrt of the pixel ratio (floor/ceil to the factor) when outside [minPixels, maxPixels].
 * Returns [height, width].
 */
export function smartResize(
  height: number,
  width: number,
  factor = 28,
  minPixels = 56 * 56,
  maxPixels = 28 * 28 * 1280,
): [number, number] {
  if (height < factor || width < factor)
    throw new InputError(`smartResize: height ${height} or width ${width} is smaller than the factor ${factor} (patch_size * merge_size)`);
  if (Math.max(height, width) / Math.min(height, width) > 200)
    throw new InputError(`smartResize: aspect ratio of ${height}x${width} is above 200, which Qwen2-VL refuses`);
  let hBar = roundHalfEven(height / factor) * factor;
  let wBar = roundHalfEven(width / factor) * factor;
  if (hBar * wBar > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    hBar = Math.floor(height / beta / factor) * factor;
    wBar = Math.floor(width / beta / factor) * factor;
  } else if (hBar * wBar < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    hBar = Math.ceil((height * beta) / factor) * factor;
    wBar = Math.ceil((width * beta) / factor) * factor;
  }
  return [hBar, wBar];
}

export interface Qwen2VLPixels {
  /** [numPatches, C * temporalPatchSize * patchSize²], rows in (t, blockRow, blockCol, mergeRow, mergeCol) order. */
  pixelValues: Float32Array;
  shape: [number, number];
  /** [grid_t, grid_h, grid_w] in patches (before merging). */
  gridThw: [number, number, number];
  /** Image tokens in the prompt: t*h*w / merge². */
  numTokens: number;
  /** The uint8 image after smart_resize (absent when do_resize is off). */
  resized?: RgbImage;
}

/**
 * The flattening step alone, on already-normalised CHW frames (all the same size). One frame is
 * repeated temporal_patch_size times, as HF does for still images.
 */
export function qwen2vlPatchify(frames: readonly ChwImage[], cfg: Pick<Qwen2VLProcessorConfig, 'patchSize' | 'temporalPatchSize' | 'mergeSize'>): Qwen2VLPixels {
  if (frames.length === 0) throw new InputError('qwen2vlPatchify: no frames');
  const { channels: C, height: H, width: W } = frames[0];
  for (const [i, f] of frames.entries())
    if (f.channels !== C || f.height !== H || f.width !== W)
      throw new InputError(`qwen2vlPatchify: frame ${i} is ${f.channels}x${f.height}x${f.width}, expected ${C}x${H}x${W}`);
  const { patchSize: p, temporalPatchSize: tp, mergeSize: m } = cfg;
  const seq = frames.length === 1 ? Array<ChwImage>(tp).fill(frames[0]) : [...frames];
  if (seq.length % tp !== 0)
    throw new InputError(`qwen2vlPatchify: ${seq.length} frames is not a multiple of temporal_patch_size ${tp}`);
  if (H % (p * m) !== 0 || W % (p * m) !== 0)
    throw new InputError(`qwen2vlPatchify: ${H}x${W} is not a multiple of patch_size*merge_size = ${p * m}; resize with smartResize first`);
  const gt = seq.length / tp;
  const gh = H / p;
  const gw = W / p;
  const rowLen = C * tp * p * p;
  const out = new Float32Array(gt * gh * gw * rowLen);
  let o = 0;
  // HF: reshape(gt, tp, C, gh/m, m, p, gw/m, m, p).transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
  for (let t = 0; t < gt; t++)
    for (let bh = 0; bh < gh / m; bh++)
      for (let bw = 0; bw < gw / m; bw++)
        for (let mh = 0; mh < m; mh++)
          for (let mw = 0; mw < m; mw++) {
            const y0 = (bh * m + mh) * p;
            const x0 = (bw * m + mw) * p;
            for (let c = 0; c < C; c++)
              for (let k = 0; k < tp; k++) {
                const src = seq[t * tp + k].data;
                for (let py = 0; py < p; py++) {
                  const s = (c * H + y0 + py) * W + x0;
                  for (let px = 0; px < p; px++) out[o++] = src[s + px];
                }
              }
          }
  return {
    pixelValues: out,
    shape: [gt * gh * gw, rowLen],
    gridThw: [gt, gh, gw],
    numTokens: (gt * gh * gw) / (m * m),
  };
}

/** Qwen2VLImageProcessor for one still image. */
export function qwen2vlPreprocess(img: RgbImage, cfg: Qwen2VLProcessorConfig = qwen2vlProcessorConfig()): Qwen2VLPixels {
  assertRgbImage(img, 'qwen2-vl processor input');
  let resized: RgbImage | undefined;
  let src = img;
  if (cfg.doResize) {
    const [h, w] = smartResize(img.height, img.width, cfg.patchSize * cfg.mergeSize, cfg.minPixels, cfg.maxPixels);
    resized = resizePil(img, w, h, cfg.resample);
    src = resized;
  }
  const chw = toChwFloat(src, {
    doRescale: cfg.doRescale,
    rescaleFactor: cfg.rescaleFactor,
    doNormalize: cfg.doNormalize,
    mean: cfg.mean,
    std: cfg.std,
  });
  const out = qwen2vlPatchify([chw], cfg);
  return resized ? { ...out, resized } : out;
}

/** Concatenates several images' patches (image 0's rows first), as the HF processor returns them. */
export function batchQwen2VL(items: readonly Qwen2VLPixels[]): {
  pixelValues: Float32Array;
  shape: [number, number];
  imageGridThw: [number, number, number][];
} {
  if (items.length === 0) throw new InputError('batchQwen2VL: no images');
  const rowLen = items[0].shape[1];
  const rows = items.reduce((n, it) => n + it.shape[0], 0);
  const pixelValues = new Float32Array(rows * rowLen);
  let o = 0;
  items.forEach((it, i) => {
    if (it.shape[1] !== rowLen) throw new InputError(`batchQwen2VL: image ${i} has rows of ${it.shape[1]}, expected ${rowLen}`);
    pixelValues.set(it.pixelValues, o);
    o += it.pixelValues.length;
  });
  return { pixelValues, shape: [rows, rowLen], imageGridThw: items.map((it) => it.gridThw) };
}

/** Where a Qwen2-VL image's tokens come from: merged grid, row-major. */
export interface QwenImageLayout {
  kind: 'qwen';
  /** Temporal patches. */
  t: number;
  /** Merged rows and columns: grid_h / merge, grid_w / merge. */
  h: number;
  w: number;
}

export function qwenImageLayout(gridThw: readonly [number, number, number], mergeSize = 2): QwenImageLayout {
  const [t, h, w] = gridThw;
  if (h % mergeSize !== 0 || w % mergeSize !== 0)
    throw new InputError(`qwenImageLayout: grid ${h}x${w} is not divisible by merge_size ${mergeSize}`);
  return { kind: 'qwen', t, h: h / mergeSize, w: w / mergeSize };
}
