// One plotly chart in a div: redraws with Plotly.react, wires clicks once, shared look for all views.

import type { Layout, PlotDiv, PlotEvent, PlotPoint, PlotlyStatic, Trace } from '../plotly-types';
import { DIVERGING_STOPS } from '../../../src/report/protocol';
import { el } from '../dom';
import type { ViewContext } from './types';

export const COLORS = {
  donor: '#E8710A',
  target: '#1967D2',
  image: '#D93A6A',
  text: '#3B7DD8',
  neutral: '#7A7A7A',
  early: 'rgba(90, 160, 90, 0.12)',
  switch: '#444',
};

/** Red-white-blue for signed quantities (Δp/p, attribution), centred with zmid 0: the figures' scale too. */
export const DIVERGING: [number, string][] = DIVERGING_STOPS.map((c, i) => [i / (DIVERGING_STOPS.length - 1), c]);
export const SEQUENTIAL = 'Viridis';

export class PlotSlot {
  readonly div: HTMLDivElement;
  private wired = false;
  private clickHandler: ((point: PlotPoint) => void) | null = null;

  constructor(
    private readonly plotly: PlotlyStatic,
    parent: HTMLElement,
    readonly name: string,
    private readonly height: number,
  ) {
    this.div = el('div', { className: `hs-plot hs-plot-${name}` });
    this.div.style.height = `${height}px`;
    parent.appendChild(this.div);
  }

  onClick(handler: (point: PlotPoint) => void): void {
    this.clickHandler = handler;
  }

  async draw(traces: Trace[], layout: Layout): Promise<void> {
    const font = fontColor(this.div);
    const full: Layout = {
      height: this.height,
      autosize: true,
      margin: { l: 60, r: 20, t: 30, b: 50 },
      paper_bgcolor: 'rgba(0,0,0,0)',
      plot_bgcolor: 'rgba(0,0,0,0)',
      font: { family: 'system-ui, -apple-system, "Segoe UI", sans-serif', size: 12, color: font },
      hoverlabel: { font: { family: 'system-ui, sans-serif', size: 12 } },
      hovermode: 'closest',
      // Keep zoom/pan across streaming redraws.
      uirevision: 'keep',
      ...layout,
    };
    const div: PlotDiv = await this.plotly.react(this.div, traces, full, {
      responsive: true,
      displaylogo: false,
      modeBarButtonsToRemove: ['lasso2d', 'select2d'],
      toImageButtonOptions: { format: 'png', filename: this.name, scale: 2 },
    });
    if (!this.wired) {
      this.wired = true;
      div.on('plotly_click', (e: PlotEvent) => {
        const point = e.points?.[0];
        if (point && this.clickHandler) this.clickHandler(point);
      });
    }
  }

  dispose(): void {
    this.plotly.purge(this.div);
    this.div.remove();
  }
}

function fontColor(node: HTMLElement): string {
  const c = node.ownerDocument.defaultView?.getComputedStyle(node).color;
  return c && c !== '' ? c : '#222';
}

/** NaN (not computed yet) → null, which plotly draws as a gap. */
export function gaps(xs: number[]): (number | null)[] {
  return xs.map((x) => (Number.isFinite(x) ? x : null));
}

export function gaps2(xs: number[][]): (number | null)[][] {
  return xs.map(gaps);
}

/** Largest |x| over the finite values (a loop: spreading 20k values into Math.max can overflow the stack). */
export function maxAbs(xs: number[]): number {
  let m = 0;
  for (const x of xs) if (Number.isFinite(x) && Math.abs(x) > m) m = Math.abs(x);
  return m;
}

export function pct(x: number, digits = 1): string {
  return Number.isFinite(x) ? `${(100 * x).toFixed(digits)}%` : '–';
}

export function fmt(x: number, digits = 3): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '–';
}

/** Read a number out of a clicked point's customdata slot (plotly hands arrays back as given). */
export function customNumber(point: PlotPoint, index: number): number | null {
  const cd = point.customdata;
  const v = Array.isArray(cd) ? cd[index] : index === 0 ? cd : undefined;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Clicking a (layer, position) cell of a layer × position grid runs that cell (the attribution map, the logit lens). */
export function clickLayerPosition(ctx: ViewContext, ...slots: PlotSlot[]): void {
  const click = (p: PlotPoint) => {
    const layer = customNumber(p, 0);
    const position = customNumber(p, 1);
    if (layer !== null && position !== null) ctx.runCell({ layer, position }, `layer ${layer}, position ${position}`);
  };
  for (const s of slots) s.onClick(click);
}

/** A vertical dashed marker line with a label on top (switch layer, resolution layer). */
export function markerLine(x: number, label: string, color: string, yref = 'paper', range?: readonly [number, number]): { shape: Record<string, unknown>; annotation: Record<string, unknown> } {
  // Given the axis range, a label near either end reads inward: centred on a marker at layer 0 it would hang
  // off the plot's left edge.
  const at = range ? (x - range[0]) / (range[1] - range[0]) : 0.5;
  const xanchor = at < 1 / 3 ? 'left' : at > 2 / 3 ? 'right' : 'center';
  return {
    shape: { type: 'line', xref: 'x', yref, x0: x, x1: x, y0: 0, y1: 1, line: { color, width: 1.5, dash: 'dash' } },
    annotation: { x, y: 1, xref: 'x', yref, text: label, showarrow: false, xanchor, yanchor: 'bottom', font: { size: 11, color } },
  };
}

/**
 * The x range of a per-layer chart over every drawn model's layers, and half a layer either side. Plotly's
 * autorange also fits the marker labels' text, and a label at layer 0 stretched the axis out to layer -1.
 */
export function layerRange(models: readonly DrawnModel<{ layers: readonly number[] }>[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const m of models) for (const l of m.data.layers) if (Number.isFinite(l)) [lo, hi] = [Math.min(lo, l), Math.max(hi, l)];
  return Number.isFinite(lo) ? [lo - 0.5, hi + 0.5] : [-0.5, 0.5];
}

/**
 * Vertical shifts (px, ≤ 0) for labels that sit on horizontal lines at `ys` (data units, `pxPerUnit` apart), so
 * that no two come closer than `gap` px: from the top down, a label that would overlap the one above it moves down.
 */
export function labelShifts(ys: readonly number[], pxPerUnit: number, gap = 12): number[] {
  const shifts = ys.map(() => 0);
  let above = Infinity;
  for (const i of ys.map((_, i) => i).sort((a, b) => ys[b] - ys[a])) {
    const natural = ys[i] * pxPerUnit;
    const at = Math.min(natural, above - gap);
    shifts[i] = at - natural;
    above = at;
  }
  return shifts;
}

/**
 * Text for plotly's pseudo-HTML (titles, hovers, labels) and the DOM. Quotes as numeric entities: plotly converts
 * those but only a few named ones, and printed `&quot;` literally (a metric naming its tokens, `logit[54 "Destin"]`).
 */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' })[c] ?? c);
}

/**
 * One colour per model when several are compared on one figure (issue 15). The modality colours above stay for a
 * single model; in a comparison the model takes the colour and each series of a model takes a dash instead.
 */
export const MODEL_COLORS = ['#C2410C', '#15803D', '#6D28D9', '#0E7490', '#A16207', '#BE185D'];
export const SERIES_DASHES = ['solid', 'dash', 'dot', 'dashdot', 'longdash', 'longdashdot'];

/** A model a view draws: the state's own data (index 0, the one clicks run on) or a compared one. */
export interface DrawnModel<D> {
  label: string | null;
  data: D;
  index: number;
  /** Its colour in a comparison; null when the view draws one model (the series keep their own colours). */
  color: string | null;
}

/** The models of a view state, its own data first. */
export function drawnModels<D>(state: { label: string | null; data: D; compare: { label: string; data: D }[] }): DrawnModel<D>[] {
  const comparing = state.compare.length > 0;
  return [{ label: state.label, data: state.data }, ...state.compare].map((m, index) => ({
    label: m.label,
    data: m.data,
    index,
    color: comparing ? MODEL_COLORS[index % MODEL_COLORS.length] : null,
  }));
}

/** A series name with its model's label in a comparison ("late: image prompt"). */
export function seriesName(m: DrawnModel<unknown>, name: string): string {
  return m.color !== null && m.label ? `${m.label}: ${name}` : name;
}

/** The line of series `k` of model `m`: its own colour and dash alone, the model's colour and dash k in a comparison. */
export function seriesLine(m: DrawnModel<unknown>, k: number, own: { color: string; dash?: string; width?: number }): Record<string, unknown> {
  const width = own.width ?? 2;
  if (m.color === null) return { color: own.color, width, ...(own.dash ? { dash: own.dash } : {}) };
  return { color: m.color, width, dash: SERIES_DASHES[k % SERIES_DASHES.length] };
}

/**
 * A point's customdata: [layer, row, hover]. Clicks run a cell on the kernel's model, which is the state's own
 * (index 0); a compared model's points carry no layer, so clicking them asks for nothing.
 */
export function pointData(m: DrawnModel<unknown>, layer: number, row: number, hover: string): [number | null, number | null, string] {
  const who = m.color !== null && m.label ? `<b>${escapeHtml(m.label)}</b><br>` : '';
  return m.index === 0 ? [layer, row, who + hover] : [null, null, who + hover.replace(/<br><i>click to [^<]*<\/i>$/, '')];
}
