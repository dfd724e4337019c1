// Pictures for values a notebook user looks at: an image (the io layer's RgbImage, a CHW float image, or a tfjs
// tensor shaped like one) as image/png, and any tensor as a shape/dtype/statistics summary with a small heatmap
// of its last two axes. Synchronous (pngjs), since display bundles are built synchronously.
import { PNG } from 'pngjs';

export interface TensorLike {
  shape: number[];
  dtype: string;
  size?: number;
  isDisposed?: boolean;
  dataSync(): ArrayLike<number>;
}

export interface Rgb {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Tensors larger than this get shape and dtype only: reading them back would stall the kernel. */
export const MAX_STAT_ELEMENTS = 16_000_000;
/** The heatmap is drawn from at most this many rows and columns (strided). */
const HEATMAP_MAX = 256;
/** Small pictures are shown at least this wide (pixelated, not smoothed). */
const MIN_SHOWN_PX = 160;

export function isTensorLike(v: unknown): v is TensorLike {
  if (v === null || typeof v !== 'object') return false;
  const t = v as Record<string, unknown>;
  return typeof t.dataSync === 'function' && Array.isArray(t.shape) && typeof t.dtype === 'string';
}

/** The io layer's RgbImage: 8-bit RGB, HWC. */
export function isRgbImage(v: unknown): v is Rgb {
  if (v === null || typeof v !== 'object') return false;
  const i = v as Record<string, unknown>;
  return (
    Number.isInteger(i.width) && Number.isInteger(i.height) && (i.width as number) > 0 && (i.height as number) > 0 &&
    i.data instanceof Uint8Array && i.data.length === (i.width as number) * (i.height as number) * 3
  );
}

/** A ChwImage (what vision towers take): float channels × height × width, normalised, so shown min–max. */
function chwToRgb(v: unknown): Rgb | null {
  if (v === null || typeof v !== 'object') return null;
  const i = v as Record<string, unknown>;
  const [c, h, w] = [i.channels, i.height, i.width] as number[];
  if (!(i.data instanceof Float32Array) || !(c === 3 || c === 1) || !Number.isInteger(h) || !Number.isInteger(w) || i.data.length !== c * h * w) return null;
  const hwc = new Float32Array(h * w * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < 3; k++) hwc[(y * w + x) * 3 + k] = i.data[((c === 1 ? 0 : k) * h + y) * w + x];
  return floatRgb(hwc, w, h);
}

function floatRgb(values: ArrayLike<number>, width: number, height: number): Rgb {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (Number.isFinite(x)) {
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
  }
  // Pixel values already in [0, 255] or [0, 1] are shown as they are; anything else is stretched min–max.
  const [a, b] = lo >= 0 && hi <= 1 ? [0, 1] : lo >= 0 && hi <= 255 ? [0, 255] : [lo, hi > lo ? hi : lo + 1];
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.round(Math.min(1, Math.max(0, (values[i] - a) / (b - a))) * 255) || 0;
  return { width, height, data };
}

/** An image-shaped tensor ([H, W, 3], [H, W, 1], [1, H, W, 3]) as RGB; null for other shapes. */
function tensorImage(t: TensorLike): Rgb | null {
  const s = t.shape[0] === 1 && t.shape.length === 4 ? t.shape.slice(1) : t.shape;
  if (s.length !== 3 || !(s[2] === 3 || s[2] === 1) || s[0] < 2 || s[1] < 2 || s[0] * s[1] > 4096 * 4096) return null;
  const [h, w, c] = s;
  const v = t.dataSync();
  if (c === 3) return floatRgb(v, w, h);
  const rgb = new Float32Array(h * w * 3);
  for (let i = 0; i < h * w; i++) rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = v[i];
  return floatRgb(rgb, w, h);
}

export function pngBase64(img: Rgb): string {
  const png = new PNG({ width: img.width, height: img.height });
  for (let i = 0, o = 0; i < img.data.length; i += 3, o += 4) {
    png.data[o] = img.data[i];
    png.data[o + 1] = img.data[i + 1];
    png.data[o + 2] = img.data[i + 2];
    png.data[o + 3] = 255;
  }
  return PNG.sync.write(png, { colorType: 2 }).toString('base64');
}

/** Viridis at 5 anchors, interpolated: perceptually ordered and readable in grey. */
const VIRIDIS = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

function viridis(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  return [0, 1, 2].map((k) => Math.round(VIRIDIS[i][k] + (VIRIDIS[i + 1][k] - VIRIDIS[i][k]) * f)) as [number, number, number];
}

export interface Stats {
  min: number;
  max: number;
  mean: number;
  std: number;
  nonFinite: number;
}

export function stats(v: ArrayLike<number>): Stats {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sq = 0;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const x = Number(v[i]);
    if (!Number.isFinite(x)) continue;
    n++;
    min = Math.min(min, x);
    max = Math.max(max, x);
    sum += x;
    sq += x * x;
  }
  const mean = n ? sum / n : NaN;
  return { min: n ? min : NaN, max: n ? max : NaN, mean, std: n ? Math.sqrt(Math.max(0, sq / n - mean * mean)) : NaN, nonFinite: v.length - n };
}

/** The first [rows × cols] slice of a tensor's values (leading axes at 0), strided down to HEATMAP_MAX, as viridis. */
export function heatmap(values: ArrayLike<number>, shape: number[], s: Stats): Rgb | null {
  if (values.length === 0 || !Number.isFinite(s.min)) return null;
  const rows = shape.length >= 2 ? shape[shape.length - 2] : 1;
  const cols = shape.length >= 1 ? shape[shape.length - 1] : 1;
  const sy = Math.ceil(rows / HEATMAP_MAX);
  const sx = Math.ceil(cols / HEATMAP_MAX);
  const h = Math.ceil(rows / sy);
  const w = Math.ceil(cols / sx);
  const span = s.max > s.min ? s.max - s.min : 1;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const v = Number(values[y * sy * cols + x * sx]);
      const [r, g, b] = Number.isFinite(v) ? viridis((v - s.min) / span) : [255, 0, 255];
      data.set([r, g, b], (y * w + x) * 3);
    }
  return { width: w, height: h, data };
}

const fmt = (x: number) => (Number.isInteger(x) ? String(x) : Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(3) : x.toFixed(4));
export const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function imgTag(b64: string, img: Rgb, title: string): string {
  const scale = Math.max(1, Math.ceil(MIN_SHOWN_PX / Math.max(img.width, img.height)));
  return `<img src="data:image/png;base64,${b64}" width="${img.width * scale}" height="${img.height * scale}" style="image-rendering: pixelated" title="${esc(title)}">`;
}

/** Bundle entries for an image value (RgbImage, ChwImage), or null. */
export function imageBundle(v: unknown): Record<string, unknown> | null {
  const rgb = isRgbImage(v) ? v : chwToRgb(v);
  if (!rgb) return null;
  const kind = isRgbImage(v) ? 'RgbImage' : `ChwImage ${(v as { channels: number }).channels}×`;
  return { 'text/plain': `${kind} ${rgb.width}×${rgb.height}`, 'image/png': pngBase64(rgb) };
}

/** Bundle entries for a tfjs tensor: summary (text/plain, text/html with a heatmap), and image/png when image-shaped. */
export function tensorBundle(t: TensorLike): Record<string, unknown> {
  const shape = `[${t.shape.join(', ')}]`;
  if (t.isDisposed) return { 'text/plain': `Tensor ${shape} ${t.dtype} (disposed)` };
  const size = t.size ?? t.shape.reduce((a, b) => a * b, 1);
  if (size > MAX_STAT_ELEMENTS || t.dtype === 'string' || t.dtype === 'complex64') {
    return { 'text/plain': `Tensor ${shape} ${t.dtype}, ${size} elements (too large to summarise)` };
  }
  const values = t.dataSync();
  const s = stats(values);
  const line = `Tensor ${shape} ${t.dtype}: min ${fmt(s.min)}, max ${fmt(s.max)}, mean ${fmt(s.mean)}, std ${fmt(s.std)}${s.nonFinite ? `, ${s.nonFinite} non-finite` : ''}`;
  const head = Array.from(values.length > 8 ? Array.prototype.slice.call(values, 0, 8) : Array.from(values), (x) => fmt(Number(x)));
  const plain = `${line}\n[${head.join(', ')}${values.length > 8 ? ', …' : ''}]`;
  const out: Record<string, unknown> = { 'text/plain': plain };
  const image = tensorImage(t);
  const map = image ?? heatmap(values, t.shape, s);
  const rows = [
    ['shape', shape],
    ['dtype', t.dtype],
    ['min', fmt(s.min)],
    ['max', fmt(s.max)],
    ['mean', fmt(s.mean)],
    ['std', fmt(s.std)],
    ...(s.nonFinite ? [['non-finite', String(s.nonFinite)]] : []),
  ];
  const table = `<table>${rows.map(([k, v]) => `<tr><th style="text-align:left">${k}</th><td style="text-align:left">${esc(v)}</td></tr>`).join('')}</table>`;
  const caption = image ? 'as an image' : t.shape.length > 2 ? `slice [${t.shape.slice(0, -2).map(() => '0').join(', ')}, :, :]` : t.shape.length === 2 ? 'heatmap' : 'values';
  let pic = '';
  if (map) {
    const b64 = pngBase64(map);
    pic = `<figure style="margin:0 0 0 1em">${imgTag(b64, map, caption)}<figcaption style="font-size:small">${esc(caption)}</figcaption></figure>`;
    if (image) out['image/png'] = b64;
  }
  out['text/html'] = `<div style="display:flex;align-items:flex-start"><div><b>Tensor</b>${table}</div>${pic}</div>`;
  return out;
}
