// The picture with its patch grid on top: one colour per patch (a per-patch score or top-1 probability),
// used by the logit-lens and attribution views.

import type { ImageSpec } from '../../../src/report/views';
import type { Layout, Trace } from '../plotly-types';

const sourceCache = new WeakMap<number[], string>();

/** A data: URL for the picture: the PNG as given, or the RGB buffer encoded through a canvas. */
export function imageSource(img: ImageSpec): string {
  if (img.png) return img.png;
  const rgb = img.rgb ?? [];
  const cached = sourceCache.get(rgb);
  if (cached) return cached;
  const canvas = document.createElement('canvas');
  canvas.width = img.width;
  canvas.height = img.height;
  const ctx = canvas.getContext('2d');
  if (!ctx) return '';
  const pixels = ctx.createImageData(img.width, img.height);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    pixels.data[j] = rgb[i];
    pixels.data[j + 1] = rgb[i + 1];
    pixels.data[j + 2] = rgb[i + 2];
    pixels.data[j + 3] = 255;
  }
  ctx.putImageData(pixels, 0, 0);
  const url = canvas.toDataURL('image/png');
  sourceCache.set(rgb, url);
  return url;
}

export interface PatchOverlay {
  /** One value per patch, row-major (NaN = no value). */
  values: number[];
  /** Hover text per patch (may contain plotly's <br>). */
  hover: string[];
  /** Click payload per patch: [layer, position]. */
  custom: [number, number][];
  /** Short text drawn on each patch (e.g. the top-1 token), or null. */
  labels: string[] | null;
  colorscale: string | [number, string][];
  zmin?: number;
  zmax?: number;
  zmid?: number;
  colorbarTitle: string;
}

export function patchTraces(img: ImageSpec, o: PatchOverlay): Trace[] {
  const { gridRows: rows, gridCols: cols, width: w, height: h } = img;
  const xs = Array.from({ length: cols }, (_, c) => ((c + 0.5) * w) / cols);
  const ys = Array.from({ length: rows }, (_, r) => ((r + 0.5) * h) / rows);
  const grid = <T>(f: (i: number) => T): T[][] =>
    Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => f(r * cols + c)));
  const heat: Trace = {
    type: 'heatmap',
    x: xs,
    y: ys,
    z: grid((i) => (Number.isFinite(o.values[i]) ? o.values[i] : null)),
    customdata: grid((i) => [o.custom[i][0], o.custom[i][1], o.hover[i]]),
    hovertemplate: '%{customdata[2]}<extra></extra>',
    colorscale: o.colorscale,
    zmin: o.zmin,
    zmax: o.zmax,
    zmid: o.zmid,
    opacity: 0.55,
    xgap: 1,
    ygap: 1,
    colorbar: { title: { text: o.colorbarTitle, side: 'right' }, thickness: 12 },
  };
  if (o.labels && rows * cols <= 400) {
    heat.text = grid((i) => o.labels?.[i] ?? '');
    heat.texttemplate = '%{text}';
    heat.textfont = { size: Math.max(7, Math.min(12, Math.floor(260 / cols))) };
  }
  return [{ type: 'image', source: imageSource(img), x0: 0, y0: 0, dx: 1, dy: 1, hoverinfo: 'skip' }, heat];
}

export function patchLayout(img: ImageSpec): Layout {
  return {
    xaxis: { range: [0, img.width], showgrid: false, zeroline: false, showticklabels: false, ticks: '', constrain: 'domain' },
    yaxis: { range: [img.height, 0], showgrid: false, zeroline: false, showticklabels: false, ticks: '', scaleanchor: 'x', constrain: 'domain' },
    margin: { l: 10, r: 10, t: 30, b: 10 },
  };
}

/** Values of one layer at the image positions, in patch order. */
export function patchValues(img: ImageSpec, row: number[]): number[] {
  return img.positions.map((p) => row[p] ?? NaN);
}
