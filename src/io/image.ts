// Image I/O and the PIL/HF-exact pixel operations the processors are built from.
export type { RgbImage, ChwImage } from './image/types';
export { assertRgbImage, rgbFromNested } from './image/types';
export type { ImageDecodeOptions, EncodeFormat } from './image/decode';
export { decodeImage, encodeImage, DEFAULT_MAX_PIXELS } from './image/decode';
export type { ImageHeader, SniffedFormat } from './image/header';
export { sniffImageHeader } from './image/header';
export type { ResampleFilter } from './image/resize';
export { resizePil } from './image/resize';
export type { Rgb, NormalizeOptions } from './image/transform';
export {
  OPENAI_CLIP_MEAN,
  OPENAI_CLIP_STD,
  IMAGENET_STANDARD_MEAN,
  IMAGENET_STANDARD_STD,
  solidImage,
  paste,
  crop,
  padImage,
  centerCrop,
  padToSquare,
  meanFill,
  toChwFloat,
  shortestEdgeSize,
} from './image/transform';
