// Llama-3.2-Vision preprocessing, following transformers 4.45.2: MllamaProcessor's cross-attention mask
// (which text tokens may read which image tiles) and MllamaImageProcessor (tiling, canvas choice, resize, pad).
import { ConfigError } from '../../errors';
import { resizePil, type ResampleFilter } from '../image/resize';
import { IMAGENET_STANDARD_MEAN, IMAGENET_STANDARD_STD, padImage, toChwFloat } from '../image/transform';
import { assertRgbImage, type RgbImage } from '../image/types';
import { optBool, optNumber, optPositiveInt, optResample, optTriple, type Json } from './config';

/**
 * HF get_cross_attention_token_mask: per image, the [start, end) token span that attends to it. An image's span
 * runs from its <|image|> token to the next image token (the last one to the end, -1); consecutive image tokens
 * share the span of the last of them.
 */
export function crossAttentionTokenSpans(ids: readonly number[], imageTokenId: number): [number, number][] {
  const locs = ids.flatMap((t, i) => (t === imageTokenId ? [i] : []));
  if (locs.length === 0) return [];
  if (locs.length === 1) return [[locs[0], -1]];
  const spans: [number, number][] = locs.slice(0, -1).map((l, i) => [l, locs[i + 1]]);
  spans.push([locs[locs.length - 1], ids.length]);
  let lastEnd = spans[spans.length - 1][1];
  for (let i = spans.length - 1; i >= 0; i--) {
    if (spans[i][0] === spans[i][1] - 1) spans[i][1] = lastEnd;
    lastEnd = spans[i][1];
  }
  return spans;
}

/**
 * MllamaProcessor's dense cross_attention_mask [B][T][images][maxTiles] from (padded) input ids and the number of
 * real tiles per image (convert_sparse_cross_attention_mask_to_dense).
 */
export function mllamaCrossAttentionMask(
  inputIds: readonly (readonly number[])[],
  imageTokenId: number,
  numTiles: readonly (readonly number[])[],
  maxNumTiles: number,
): number[][][][] {
  const spans = inputIds.map((r) => crossAttentionTokenSpans(r, imageTokenId));
  const images = Math.max(1, ...spans.map((s) => s.length), ...numTiles.map((n) => n.length));
  return inputIds.map((row, b) => {
    const T = row.length;
    const out = row.map(() => Array.from({ length: images }, () => new Array<number>(maxNumTiles).fill(0)));
    spans[b].forEach(([start, end0], m) => {
      let end = Math.min(end0, T);
      if (end === -1) end = T;
      const n = numTiles[b]?.[m] ?? 0;
      for (let t = start; t < end; t++) for (let j = 0; j < Math.min(n, maxNumTiles); j++) out[t][m][j] = 1;
    });
    return out;
  });
}

export interface MllamaProcessorConfig {
  /** Square tile side (size.height = size.width). */
  tileSize: number;
  maxImageTiles: number;
  resample: ResampleFilter;
  rescaleFactor: number;
  doRescale: boolean;
  doNormalize: boolean;
  mean: readonly number[];
  std: readonly number[];
}

/** preprocessor_config.json of MllamaImageProcessor (defaults: 4.45.2's; tiles must be square, resize and pad on). */
export function parseMllamaProcessorConfig(json: Json, where = 'preprocessor_config.json'): MllamaProcessorConfig {
  const size = (json.size ?? { height: 224, width: 224 }) as Record<string, unknown>;
  if (typeof size !== 'object' || !Number.isInteger(size.height) || size.height !== size.width || (size.height as number) <= 0)
    throw new ConfigError(`${where}: "size" must be a square {height, width} tile, got ${JSON.stringify(json.size)}`);
  for (const k of ['do_resize', 'do_pad'])
    if (optBool(json, k, where) === false) throw new ConfigError(`${where}: "${k}": false is not supported (Mllama tiles need a resized, padded canvas)`);
  return {
    tileSize: size.height as number,
    maxImageTiles: optPositiveInt(json, 'max_image_tiles', where) ?? 4,
    resample: optResample(json, 'resample', where) ?? 'bilinear',
    rescaleFactor: optNumber(json, 'rescale_factor', where) ?? 1 / 255,
    doRescale: optBool(json, 'do_rescale', where) ?? true,
    doNormalize: optBool(json, 'do_normalize', where) ?? true,
    mean: optTriple(json, 'image_mean', where) ?? IMAGENET_STANDARD_MEAN,
    std: optTriple(json, 'image_std', where) ?? IMAGENET_STANDARD_STD,
  };
}

/** HF get_all_supported_aspect_ratios: (tiles high, tiles wide) with at most `maxTiles` tiles, in HF's order. */
export function supportedAspectRatios(maxTiles: number): [number, number][] {
  const out: [number, number][] = [];
  for (let a = 1; a <= maxTiles; a++) for (let b = 1; b <= maxTiles; b++) if (a * b <= maxTiles) out.push([a, b]);
  return out;
}

/**
 * HF get_optimal_tiled_canvas → [height, width]: the smallest upscale that fits the image without distortion
 * (else the mildest downscale), ties broken by the least canvas area (first wins).
 */
export function optimalTiledCanvas(height: number, width: number, maxTiles: number, tile: number): [number, number] {
  const canvases = supportedAspectRatios(maxTiles).map(([h, w]) => [h * tile, w * tile] as [number, number]);
  const scales = canvases.map(([h, w]) => Math.min(h / height, w / width));
  const up = scales.filter((s) => s >= 1);
  const chosen = up.length ? Math.min(...up) : Math.max(...scales.filter((s) => s < 1));
  let best: [number, number] | null = null;
  canvases.forEach((c, i) => {
    if (scales[i] === chosen && (!best || c[0] * c[1] < best[0] * best[1])) best = c;
  });
  return best!;
}

/** HF get_image_size_fit_to_canvas → [height, width]: the target clipped to [tile, canvas], aspect kept by the limiting side. */
export function sizeFitToCanvas(height: number, width: number, canvasH: number, canvasW: number, tile: number): [number, number] {
  const clip = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  const tw = clip(width, tile, canvasW);
  const th = clip(height, tile, canvasH);
  const sh = th / height;
  const sw = tw / width;
  if (sw < sh) return [Math.min(Math.floor(height * sw) || 1, th), tw];
  return [th, Math.min(Math.floor(width * sh) || 1, tw)];
}

export interface MllamaPixels {
  /** [B, images, maxTiles, 3, tile, tile], tiles row-major over the canvas, missing tiles and images zero. */
  data: Float32Array;
  shape: [number, number, number, number, number, number];
  /** 1-based index into supportedAspectRatios per image (0 = no image). */
  aspectRatioIds: number[][];
  /** 1 for each real tile (and, as HF, always for the first tile). */
  aspectRatioMask: number[][][];
  numTiles: number[][];
}

/** MllamaImageProcessor on raw images, one list per batch row: resize onto the best tile canvas, pad, tile. */
export function mllamaPreprocess(batch: readonly (readonly RgbImage[])[], cfg: MllamaProcessorConfig): MllamaPixels {
  const { tileSize: S, maxImageTiles: T } = cfg;
  const ratios = supportedAspectRatios(T);
  const M = Math.max(1, ...batch.map((r) => r.length));
  const per = 3 * S * S;
  const data = new Float32Array(batch.length * M * T * per);
  const aspectRatioIds = batch.map(() => new Array<number>(M).fill(0));
  const aspectRatioMask = batch.map(() => Array.from({ length: M }, () => [1, ...new Array<number>(T - 1).fill(0)]));
  const numTiles = batch.map((r) => r.map(() => 0));
  batch.forEach((images, b) =>
    images.forEach((img, m) => {
      assertRgbImage(img, `image ${m} of row ${b}`);
      const [ch, cw] = optimalTiledCanvas(img.height, img.width, T, S);
      const [nh, nw] = sizeFitToCanvas(img.height, img.width, ch, cw, S);
      const resized = nh === img.height && nw === img.width ? img : resizePil(img, nw, nh, cfg.resample);
      const canvas = padImage(resized, { top: 0, left: 0, bottom: ch - nh, right: cw - nw });
      const chw = toChwFloat(canvas, cfg);
      const th = ch / S;
      const tw = cw / S;
      aspectRatioIds[b][m] = ratios.findIndex(([h, w]) => h === th && w === tw) + 1;
      numTiles[b][m] = th * tw;
      for (let j = 0; j < th * tw; j++) aspectRatioMask[b][m][j] = 1;
      // split_to_tiles: tile (i, j) of the canvas → tile index i·tw + j, each CHW.
      for (let i = 0; i < th; i++)
        for (let j = 0; j < tw; j++) {
          const base = (((b * M + m) * T + i * tw + j) * per) as number;
          for (let c = 0; c < 3; c++)
            for (let y = 0; y < S; y++) {
              const src = (c * ch + i * S + y) * cw + j * S;
              data.set(chw.data.subarray(src, src + S), base + (c * S + y) * S);
            }
        }
    }),
  );
  return { data, shape: [batch.length, M, T, 3, S, S], aspectRatioIds, aspectRatioMask, numTiles };
}
