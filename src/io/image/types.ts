// The one image type the io layer passes around: 8-bit RGB, row-major HWC, no alpha, no stride.
import { InputError } from '../../errors';

/** 8-bit RGB image, `data[(y * width + x) * 3 + c]`. Matches what PIL's `convert('RGB')` holds. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Float image in CHW layout (what vision towers take), `data[(c * height + y) * width + x]`. */
export interface ChwImage {
  channels: number;
  height: number;
  width: number;
  data: Float32Array;
}

/** Throws when an RgbImage's fields do not agree (callers build these by hand in tests and notebooks). */
export function assertRgbImage(img: RgbImage, what = 'image'): void {
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width <= 0 || img.height <= 0)
    throw new InputError(`${what}: width and height must be positive integers, got ${img.width}x${img.height}`);
  if (img.data.length !== img.width * img.height * 3)
    throw new InputError(
      `${what}: data has ${img.data.length} bytes but ${img.width}x${img.height} RGB needs ${img.width * img.height * 3}`,
    );
}

/** Builds an RgbImage from nested [h][w][3] arrays (the layout of the HF fixtures' `*_uint8_hwc`). */
export function rgbFromNested(rows: readonly (readonly (readonly number[])[])[], what = 'image'): RgbImage {
  const height = rows.length;
  const width = height > 0 ? rows[0].length : 0;
  if (height === 0 || width === 0) throw new InputError(`${what}: empty nested array`);
  const data = new Uint8Array(width * height * 3);
  let o = 0;
  for (let y = 0; y < height; y++) {
    const row = rows[y];
    if (row.length !== width) throw new InputError(`${what}: row ${y} has ${row.length} pixels, expected ${width}`);
    for (let x = 0; x < width; x++) {
      const px = row[x];
      if (px.length !== 3) throw new InputError(`${what}: pixel (${y}, ${x}) has ${px.length} channels, expected 3`);
      for (let c = 0; c < 3; c++) {
        const v = px[c];
        if (!Number.isInteger(v) || v < 0 || v > 255) throw new InputError(`${what}: pixel (${y}, ${x}) value ${v} is not a uint8`);
        data[o++] = v;
      }
    }
  }
  return { width, height, data };
}
