// The picture under a view's patch grid (issue 16): the logit-lens and attribution widgets colour each image
// patch by its value at a chosen layer over the picture the vision tower saw. The view says which of its
// positions is which patch; the picture is the model's own preprocessed pixels (crop 0: the whole image for
// LLaVA-1.5, SigLIP, Pixtral and the teaching models, the base image of LLaVA-NeXT), so patch (r, c) lies over
// exactly the pixels that made it, whatever the processor resized, cropped or padded.
import { encodeImage, resizePil, type RgbImage } from '../io/image';
import { gridCoordinates } from '../interventions/selectors';
import type { PromptCase, PromptSource } from './source';

/** Longest side of the carried picture: it travels in the widget state and is saved in notebooks. */
export const PICTURE_MAX_SIDE = 336;

/**
 * The view's `image` (src/report/views.ts ImageSpec) for prompt `c`, whose view shows the prompt positions
 * `viewPositions` (prompt-relative, in view order). Null when there is nothing to draw a grid over: a text
 * prompt, an image whose tokens are not a plain grid (Qwen2-VL's merged 2×2 patches come flattened), or a view
 * that leaves some of the grid's patches out.
 */
export async function viewPicture(source: PromptSource, c: PromptCase, viewPositions: readonly number[]): Promise<Record<string, unknown> | null> {
  const span = c.spans.images[0];
  if (!c.image || !span) return null;
  // Patch (row, col) → prompt position, over the span's one grid ('grid'; NeXT's 'base', its first crop).
  const at = new Map<number, { row: number; col: number }>();
  let rows = 0;
  let cols = 0;
  for (let k = 0; k < span.length; k++) {
    const g = gridCoordinates(c.spans, span.start + k);
    if (!g || (g.part !== 'grid' && g.part !== 'base')) continue;
    at.set(span.start + k, { row: g.row, col: g.col });
    rows = Math.max(rows, g.row + 1);
    cols = Math.max(cols, g.col + 1);
  }
  if (rows === 0 || at.size !== rows * cols) return null;
  const index = new Map(viewPositions.map((p, i) => [p, i]));
  const positions = new Array<number>(rows * cols).fill(-1);
  for (const [p, { row, col }] of at) {
    const i = index.get(p);
    if (i === undefined) return null;
    positions[row * cols + col] = i;
  }
  const px = await source.pixels(c.image);
  const [, ch, h, w] = px.shape.length === 4 ? px.shape : [1, ...px.shape];
  if (ch !== 3 || !(h > 0 && w > 0) || px.data.length < 3 * h * w) return null;
  let img = displayRgb(px.data.subarray(0, 3 * h * w), h, w);
  const scale = PICTURE_MAX_SIDE / Math.max(h, w);
  if (scale < 1) img = resizePil(img, Math.max(1, Math.round(w * scale)), Math.max(1, Math.round(h * scale)));
  const png = Buffer.from(await encodeImage(img, 'png')).toString('base64');
  return { png, rgb: null, width: img.width, height: img.height, gridRows: rows, gridCols: cols, positions };
}

/**
 * CHW pixels normalised by the processor (mean/std per channel) back to displayable RGB: one min–max stretch
 * over all three channels, which undoes the normalisation up to a colour balance the per-channel stds (0.26–0.28
 * for CLIP, 0.5 for SigLIP) barely change, without needing the processor's constants here.
 */
function displayRgb(chw: Float32Array, h: number, w: number): RgbImage {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of chw) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi > lo ? hi - lo : 1;
  const data = new Uint8Array(3 * h * w);
  for (let ch = 0; ch < 3; ch++)
    for (let i = 0; i < h * w; i++) data[i * 3 + ch] = Math.round(((chw[ch * h * w + i] - lo) / span) * 255);
  return { width: w, height: h, data };
}
