// How a family turns an RGB image into pixels and prompt tokens: part of the family's contract, written once in
// its model class (`Model.imagePrep`), so experiments never switch on the family name or test `instanceof`
// (issue 13). Types only; each family's model implements it with its processor from src/io/processors.
import type { RgbImage } from '../io/image';
import type { ImageLayout } from '../io/prompt';
import type { TextTokenizer } from '../io/tokenizer';

/** Pixels of one preprocessed image, with the per-image extras some families need. */
export interface PixelInput {
  data: Float32Array;
  /** Shape with a leading image axis of 1 ([1, C, H, W] for LLaVA). */
  shape: number[];
  /** LLaVA-NeXT: the original [height, width]; Pixtral: the processed one (images of a batch are padded to the largest). */
  imageSize?: [number, number];
  gridThw?: [number, number, number];
}

export interface ImagePrep {
  /** `tokenIds`: the image's prompt tokens when they are not `numTokens` image tokens (Pixtral's row breaks). */
  prepare(img: RgbImage): { pixels: PixelInput; numTokens: number; layout: ImageLayout | null; tokenIds?: number[] };
}

/** What preparing an image may read besides the model: the folder's preprocessor_config.json and tokenizer. */
export interface PrepAssets {
  preprocessor?: Record<string, unknown>;
  tokenizer?: TextTokenizer;
}
