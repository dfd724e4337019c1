// CLIPImageProcessor (LLaVA-1.5): RGB -> resize shortest edge (PIL bicubic) -> centre crop ->
// x/255 -> (x - mean)/std -> CHW. Optional LLaVA-style pad-to-square first.
import { ConfigError, InputError } from '../../errors';
import { resizePil, ResampleFilter } from '../image/resize';
import {
  OPENAI_CLIP_MEAN,
  OPENAI_CLIP_STD,
  Rgb,
  centerCrop,
  meanFill,
  padToSquare,
  shortestEdgeSize,
  toChwFloat,
} from '../image/transform';
import { ChwImage, RgbImage, assertRgbImage } from '../image/types';
import { Json, SizeSpec, optBool, optNumber, optResample, optTriple, parseSize } from './config';

export interface ClipProcessorConfig {
  doResize: boolean;
  size: SizeSpec;
  resample: ResampleFilter;
  doCenterCrop: boolean;
  cropSize: { height: number; width: number };
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  mean: readonly number[];
  std: readonly number[];
  /**
   * Pad to a square before anything else. 'mean' = original LLaVA `expand2square` with
   * int(mean*255) (122, 116, 104); 'black' = letter-box as PopVQA stores images; false = HF processor.
   */
  padToSquare: false | 'mean' | 'black' | Rgb;
}

/** `llava-hf/llava-1.5-7b-hf` preprocessor: 336 px, OpenAI CLIP statistics. */
export function llava15ProcessorConfig(px = 336): ClipProcessorConfig {
  return {
    doResize: true,
    size: { shortestEdge: px },
    resample: 'bicubic',
    doCenterCrop: true,
    cropSize: { height: px, width: px },
    doRescale: true,
    rescaleFactor: 1 / 255,
    doNormalize: true,
    mean: OPENAI_CLIP_MEAN,
    std: OPENAI_CLIP_STD,
    padToSquare: false,
  };
}

/** Reads a CLIPImageProcessor-style `preprocessor_config.json` (defaults as in transformers 4.45). */
export function parseClipProcessorConfig(json: Json, where = 'preprocessor_config.json'): ClipProcessorConfig {
  const size = parseSize(json.size, 'size', where, false) ?? { shortestEdge: 224 };
  const crop = parseSize(json.crop_size, 'crop_size', where, true) ?? { height: 224, width: 224 };
  if (!('height' in crop)) throw new ConfigError(`${where}: "crop_size" must give height and width, got ${JSON.stringify(json.crop_size)}`);
  return {
    doResize: optBool(json, 'do_resize', where) ?? true,
    size,
    resample: optResample(json, 'resample', where) ?? 'bicubic',
    doCenterCrop: optBool(json, 'do_center_crop', where) ?? true,
    cropSize: crop,
    doRescale: optBool(json, 'do_rescale', where) ?? true,
    rescaleFactor: optNumber(json, 'rescale_factor', where) ?? 1 / 255,
    doNormalize: optBool(json, 'do_normalize', where) ?? true,
    mean: optTriple(json, 'image_mean', where) ?? OPENAI_CLIP_MEAN,
    std: optTriple(json, 'image_std', where) ?? OPENAI_CLIP_STD,
    padToSquare: false,
  };
}

/** Resize step of CLIPImageProcessor.resize: shortest edge (aspect kept) or exact height x width. */
export function clipResize(img: RgbImage, size: SizeSpec, resample: ResampleFilter): RgbImage {
  if ('shortestEdge' in size) {
    const [h, w] = shortestEdgeSize(img.height, img.width, size.shortestEdge, size.maxSize);
    return resizePil(img, w, h, resample);
  }
  return resizePil(img, size.width, size.height, resample);
}

/** The uint8 geometry part (pad-to-square, resize, crop) without normalisation, for inspection and plots. */
export function clipGeometry(img: RgbImage, cfg: ClipProcessorConfig): RgbImage {
  assertRgbImage(img, 'clip processor input');
  let out = img;
  if (cfg.padToSquare !== false) {
    const fill: Rgb =
      cfg.padToSquare === 'mean' ? meanFill(cfg.mean) : cfg.padToSquare === 'black' ? [0, 0, 0] : cfg.padToSquare;
    out = padToSquare(out, fill);
  }
  if (cfg.doResize) out = clipResize(out, cfg.size, cfg.resample);
  if (cfg.doCenterCrop) out = centerCrop(out, cfg.cropSize.width, cfg.cropSize.height);
  return out;
}

/** One image -> float32 CHW, identical to CLIPImageProcessor(...).pixel_values[0]. */
export function clipPreprocess(img: RgbImage, cfg: ClipProcessorConfig = llava15ProcessorConfig()): ChwImage {
  return toChwFloat(clipGeometry(img, cfg), {
    doRescale: cfg.doRescale,
    rescaleFactor: cfg.rescaleFactor,
    doNormalize: cfg.doNormalize,
    mean: cfg.mean,
    std: cfg.std,
  });
}

/** Stacks equally sized CHW images into one [n, C, H, W] buffer. */
export function stackChw(images: readonly ChwImage[]): { data: Float32Array; shape: [number, number, number, number] } {
  if (images.length === 0) throw new InputError('stackChw: no images');
  const { channels, height, width } = images[0];
  const per = channels * height * width;
  const data = new Float32Array(per * images.length);
  images.forEach((im, i) => {
    if (im.channels !== channels || im.height !== height || im.width !== width)
      throw new InputError(`stackChw: image ${i} is ${im.channels}x${im.height}x${im.width}, expected ${channels}x${height}x${width}`);
    data.set(im.data, i * per);
  });
  return { data, shape: [images.length, channels, height, width] };
}

export interface GridImageLayout {
  kind: 'grid';
  rows: number;
  cols: number;
  /** 1 when the CLS token is kept (`vision_feature_select_strategy: "full"`), placed first. */
  cls: number;
}

/**
 * Image tokens of a fixed-resolution LLaVA: (image_size / patch_size)², plus the CLS token when
 * `vision_feature_select_strategy` is 'full' and the tower has one (CLIP yes, SigLIP no).
 */
export function clipImageLayout(
  imageSize: number,
  patchSize: number,
  opts: { strategy?: 'default' | 'full'; hasCls?: boolean } = {},
): GridImageLayout {
  if (!Number.isInteger(imageSize / patchSize))
    throw new ConfigError(`vision_config: image_size ${imageSize} is not a multiple of patch_size ${patchSize}`);
  const g = imageSize / patchSize;
  const cls = (opts.strategy ?? 'default') === 'full' && (opts.hasCls ?? true) ? 1 : 0;
  return { kind: 'grid', rows: g, cols: g, cls };
}

export function gridLayoutTokens(l: GridImageLayout): number {
  return l.rows * l.cols + l.cls;
}
