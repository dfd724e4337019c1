// Geometry and normalisation steps of the HF image processors, on uint8 RGB (as HF does them on
// numpy uint8 before rescaling), plus the CHW float conversion with HF's exact float32 rounding.
import { InputError } from '../../errors';
import { ChwImage, RgbImage, assertRgbImage } from './types';

/** transformers.image_utils OPENAI_CLIP_MEAN / _STD (CLIP, LLaVA-1.5/1.6, Qwen2-VL). */
export const OPENAI_CLIP_MEAN: readonly number[] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_CLIP_STD: readonly number[] = [0.26862954, 0.26130258, 0.27577711];
/** IMAGENET_STANDARD_MEAN / _STD (SigLIP processors). */
export const IMAGENET_STANDARD_MEAN: readonly number[] = [0.5, 0.5, 0.5];
export const IMAGENET_STANDARD_STD: readonly number[] = [0.5, 0.5, 0.5];

export type Rgb = readonly [number, number, number];

/** Python floor division (HF's `//`), correct for negative numerators. */
function floorDiv(a: number, b: number): number {
  return Math.floor(a / b);
}

function checkSize(width: number, height: number, what: string): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0)
    throw new InputError(`${what}: size must be positive integers, got ${width}x${height}`);
}

function checkFill(fill: Rgb, what: string): void {
  for (const v of fill)
    if (!Number.isInteger(v) || v < 0 || v > 255) throw new InputError(`${what}: fill colour ${JSON.stringify(fill)} must be 3 uint8 values`);
}

/** New image of the given size filled with one colour. */
export function solidImage(width: number, height: number, fill: Rgb = [0, 0, 0]): RgbImage {
  checkSize(width, height, 'solidImage');
  checkFill(fill, 'solidImage');
  const data = new Uint8Array(width * height * 3);
  if (fill[0] !== 0 || fill[1] !== 0 || fill[2] !== 0)
    for (let i = 0; i < width * height; i++) {
      data[i * 3] = fill[0];
      data[i * 3 + 1] = fill[1];
      data[i * 3 + 2] = fill[2];
    }
  return { width, height, data };
}

/** Copies `src` into `dst` with its top-left at (left, top); parts falling outside are clipped. */
export function paste(dst: RgbImage, src: RgbImage, left: number, top: number): void {
  const x0 = Math.max(0, left);
  const x1 = Math.min(dst.width, left + src.width);
  if (x1 <= x0) return;
  for (let y = Math.max(0, top); y < Math.min(dst.height, top + src.height); y++) {
    const s = ((y - top) * src.width + (x0 - left)) * 3;
    dst.data.set(src.data.subarray(s, s + (x1 - x0) * 3), (y * dst.width + x0) * 3);
  }
}

/** Sub-rectangle [left, left+width) x [top, top+height); must lie inside the image. */
export function crop(img: RgbImage, left: number, top: number, width: number, height: number): RgbImage {
  checkSize(width, height, 'crop');
  if (left < 0 || top < 0 || left + width > img.width || top + height > img.height)
    throw new InputError(`crop: box (${left}, ${top}, ${width}x${height}) lies outside the ${img.width}x${img.height} image`);
  const out = solidImage(width, height);
  paste(out, { width: img.width, height: img.height, data: img.data }, -left, -top);
  return out;
}

/** Constant padding (numpy `pad` mode constant, as HF `pad` on uint8). */
export function padImage(
  img: RgbImage,
  pad: { top: number; bottom: number; left: number; right: number },
  fill: Rgb = [0, 0, 0],
): RgbImage {
  assertRgbImage(img, 'padImage input');
  for (const [k, v] of Object.entries(pad))
    if (!Number.isInteger(v) || v < 0) throw new InputError(`padImage: ${k} padding must be a non-negative integer, got ${v}`);
  const out = solidImage(img.width + pad.left + pad.right, img.height + pad.top + pad.bottom, fill);
  paste(out, img, pad.left, pad.top);
  return out;
}

/**
 * HF `image_transforms.center_crop`: top/left = (orig - crop) // 2; when the crop is larger than the
 * image, the image is first zero-padded (extra pixel on the top/left when odd, via ceil) and then cropped.
 */
export function centerCrop(img: RgbImage, cropWidth: number, cropHeight: number): RgbImage {
  assertRgbImage(img, 'centerCrop input');
  checkSize(cropWidth, cropHeight, 'centerCrop');
  const top = floorDiv(img.height - cropHeight, 2);
  const left = floorDiv(img.width - cropWidth, 2);
  if (top >= 0 && left >= 0 && top + cropHeight <= img.height && left + cropWidth <= img.width)
    return crop(img, left, top, cropWidth, cropHeight);
  const newH = Math.max(cropHeight, img.height);
  const newW = Math.max(cropWidth, img.width);
  const topPad = Math.ceil((newH - img.height) / 2);
  const leftPad = Math.ceil((newW - img.width) / 2);
  const padded = solidImage(newW, newH);
  paste(padded, img, leftPad, topPad);
  const t = Math.max(0, top + topPad);
  const b = Math.min(newH, top + topPad + cropHeight);
  const l = Math.max(0, left + leftPad);
  const r = Math.min(newW, left + leftPad + cropWidth);
  return crop(padded, l, t, r - l, b - t);
}

/**
 * Pads the shorter side to make a square, image centred (offset = diff // 2, as LLaVA's
 * `expand2square` and HF's `expand_to_square`). `fill` black gives the letter-boxed layout
 * PopVQA stores its images in; use `meanFill(mean)` for the original LLaVA-1.5 training pipeline.
 */
export function padToSquare(img: RgbImage, fill: Rgb = [0, 0, 0]): RgbImage {
  assertRgbImage(img, 'padToSquare input');
  checkFill(fill, 'padToSquare');
  if (img.width === img.height) return { width: img.width, height: img.height, data: new Uint8Array(img.data) };
  const side = Math.max(img.width, img.height);
  const out = solidImage(side, side, fill);
  paste(out, img, floorDiv(side - img.width, 2), floorDiv(side - img.height, 2));
  return out;
}

/** LLaVA's `tuple(int(x * 255) for x in image_processor.image_mean)`: (122, 116, 104) for OpenAI CLIP. */
export function meanFill(mean: readonly number[] = OPENAI_CLIP_MEAN): Rgb {
  if (mean.length !== 3) throw new InputError(`meanFill: mean must have 3 values, got ${mean.length}`);
  return [Math.trunc(mean[0] * 255), Math.trunc(mean[1] * 255), Math.trunc(mean[2] * 255)];
}

export interface NormalizeOptions {
  /** Multiplier applied in float64 before casting to float32 (HF `rescale`); default 1/255. */
  rescaleFactor?: number;
  doRescale?: boolean;
  doNormalize?: boolean;
  mean?: readonly number[];
  std?: readonly number[];
}

/**
 * uint8 HWC -> float32 CHW exactly as HF does it: `float32(float64(v) * rescale_factor)`, then
 * `(x - float32(mean)) / float32(std)` in float32 (each float32 op is exact when done in double
 * and rounded once, so the result is bit-identical to numpy's).
 */
export function toChwFloat(img: RgbImage, opts: NormalizeOptions = {}): ChwImage {
  assertRgbImage(img, 'toChwFloat input');
  const doRescale = opts.doRescale ?? true;
  const doNormalize = opts.doNormalize ?? true;
  const factor = opts.rescaleFactor ?? 1 / 255;
  const mean = opts.mean ?? OPENAI_CLIP_MEAN;
  const std = opts.std ?? OPENAI_CLIP_STD;
  if (mean.length !== 3 || std.length !== 3)
    throw new InputError(`toChwFloat: mean and std must have 3 values, got ${mean.length} and ${std.length}`);
  if (std.some((s) => s === 0)) throw new InputError(`toChwFloat: std ${JSON.stringify(std)} contains 0`);
  const { width, height } = img;
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    // One lookup table per channel: 256 possible inputs.
    const lut = new Float32Array(256);
    const m = Math.fround(mean[c]);
    const s = Math.fround(std[c]);
    for (let v = 0; v < 256; v++) {
      let x = doRescale ? Math.fround(v * factor) : v;
      if (doNormalize) x = Math.fround(Math.fround(x - m) / s);
      lut[v] = x;
    }
    const base = c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = lut[img.data[i * 3 + c]];
  }
  return { channels: 3, height, width, data: out };
}

/**
 * HF `get_resize_output_image_size(image, size=shortest_edge, default_to_square=False)`:
 * short side -> `shortestEdge`, long side -> int(shortestEdge * long / short) (truncated).
 * Returns [height, width].
 */
export function shortestEdgeSize(height: number, width: number, shortestEdge: number, maxSize?: number): [number, number] {
  checkSize(width, height, 'shortestEdgeSize');
  const [short, long] = width <= height ? [width, height] : [height, width];
  let newShort = shortestEdge;
  let newLong = Math.trunc((shortestEdge * long) / short);
  if (maxSize !== undefined) {
    if (maxSize <= shortestEdge)
      throw new InputError(`shortestEdgeSize: max_size (${maxSize}) must be larger than the shortest edge (${shortestEdge})`);
    if (newLong > maxSize) {
      newShort = Math.trunc((maxSize * newShort) / newLong);
      newLong = maxSize;
    }
  }
  return width <= height ? [newLong, newShort] : [newShort, newLong];
}
