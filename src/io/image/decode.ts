// Decoding image files to RgbImage with sharp (libvips). sharp's JPEG decoder is bit-identical to
// Pillow's; options are chosen to match `PIL.Image.open(f).convert('RGB')`, which is what the HF
// processors see: no EXIF rotation, ICC profiles ignored, alpha dropped (not composited), first frame.
import { promises as fs } from 'fs';
import sharp from 'sharp';
import type { OutputInfo } from 'sharp';
import { InputError } from '../../errors';
import { sniffImageHeader } from './header';
import { RgbImage, assertRgbImage } from './types';

/** Default ceiling on width*height: 8192² (~200 MB as RGB), far above any VLM input. */
export const DEFAULT_MAX_PIXELS = 8192 * 8192;

export interface ImageDecodeOptions {
  /** Refuse images with more pixels than this, read from the header before decoding. */
  maxPixels?: number;
  /** Apply the EXIF Orientation tag. Default false, like PIL's `Image.open` (HF `load_image` does apply it). */
  autoOrient?: boolean;
}

function describe(input: Uint8Array | string): string {
  return typeof input === 'string' ? `image file "${input}"` : `image bytes (${input.length} bytes)`;
}

function checkDims(width: number, height: number, maxPixels: number, what: string): void {
  if (!(width > 0) || !(height > 0))
    throw new InputError(`${what}: the header says ${width}x${height}; a zero-size image cannot be used`);
  if (width * height > maxPixels)
    throw new InputError(
      `${what}: ${width}x${height} = ${width * height} pixels exceeds the limit of ${maxPixels}; ` +
        `downscale it first or raise maxPixels`,
    );
}

/**
 * Decodes JPEG/PNG/WebP/GIF (anything libvips reads) from bytes or a file path to 8-bit RGB.
 * Throws InputError for missing/empty files, unknown formats, zero-size or oversized images
 * (checked from the header before decoding), and truncated or corrupt pixel data.
 */
export async function decodeImage(input: Uint8Array | string, opts: ImageDecodeOptions = {}): Promise<RgbImage> {
  const what = describe(input);
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!(maxPixels > 0)) throw new InputError(`decodeImage: maxPixels must be positive, got ${maxPixels}`);
  let bytes: Uint8Array;
  if (typeof input === 'string') {
    try {
      bytes = await fs.readFile(input);
    } catch (e) {
      throw new InputError(`${what} cannot be read: ${(e as Error).message}`);
    }
  } else bytes = input;
  if (bytes.length === 0) throw new InputError(`${what} is empty (0 bytes)`);

  const header = sniffImageHeader(bytes);
  if (header) checkDims(header.width, header.height, maxPixels, what);

  // Stay well inside sharp's own guard too, for formats the sniffer does not know.
  const make = () =>
    sharp(bytes, { failOn: 'error', limitInputPixels: maxPixels, ignoreIcc: true, autoOrient: opts.autoOrient ?? false });
  let width: number;
  let height: number;
  try {
    const meta = await make().metadata();
    width = meta.width ?? 0;
    height = meta.height ?? 0;
  } catch (e) {
    throw new InputError(`${what} is not a readable image (corrupt header or unsupported format): ${(e as Error).message}`);
  }
  checkDims(width, height, maxPixels, what);

  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await make().removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new InputError(`${what} is truncated or corrupt and could not be decoded: ${(e as Error).message}`);
  }
  const { info } = out;
  if (info.channels !== 3)
    throw new InputError(`${what}: decoder returned ${info.channels} channels, expected 3 after RGB conversion`);
  const img: RgbImage = {
    width: info.width,
    height: info.height,
    data: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength),
  };
  assertRgbImage(img, what);
  return img;
}

export type EncodeFormat = 'png' | 'jpeg' | 'webp';

/** Encodes an RgbImage (for reports and tests). JPEG quality defaults to 90. */
export async function encodeImage(img: RgbImage, format: EncodeFormat = 'png', quality = 90): Promise<Uint8Array> {
  assertRgbImage(img, 'encodeImage input');
  const s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  const buf =
    format === 'png'
      ? await s.png().toBuffer()
      : format === 'jpeg'
        ? await s.jpeg({ quality }).toBuffer()
        : await s.webp({ quality }).toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
