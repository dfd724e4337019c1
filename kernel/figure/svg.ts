// Hopscope views drawn as standalone SVG without a browser, so a notebook run headless (nbconvert) can write its
// figures. The widgets draw with plotly in the page; this is the same data (validated by
// src/report/views.ts validateViewState, so both read one shape) in three plain forms: layer curves, a
// [row × layer] heatmap, grouped bars. sharp (librsvg) turns the SVG into PNG (save.ts).
import { DIVERGING_STOPS } from '../../src/report/protocol';
import { attributionMapTitle, type AnyViewState, type PositionInfo } from '../../src/report/views';
import { formatInterval, type Interval } from '../../src/experiments/resolution';

const W = 640;
const H = 400;
const M = { left: 64, right: 150, top: 44, bottom: 52 };
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const FONT = 'font-family="DejaVu Sans, Arial, Helvetica, sans-serif"';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (x: number) => (Math.round(x * 100) / 100).toString();

interface Series {
  name: string;
  y: number[];
}

interface Frame {
  title: string;
  xLabel: string;
  yLabel: string;
}

function svg(body: string, title: string, height = H): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" ${FONT} font-size="12">\n` +
    `<rect width="${W}" height="${height}" fill="#ffffff"/>\n` +
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="${titleSize(title)}" font-weight="bold">${esc(title)}</text>\n${body}</svg>\n`
  );
}

/** Characters of a legend line beside the plot (the right margin less the swatch, at about 0.6 em each). */
const LEGEND_CHARS = 19;

/** Words packed into lines of at most `width` characters (a longer word gets a line of its own). */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const last = lines.length ? lines[lines.length - 1] : null;
    if (last !== null && last.length + 1 + word.length <= width) lines[lines.length - 1] = `${last} ${word}`;
    else lines.push(word);
  }
  return lines.length ? lines : [''];
}

/**
 * The legend beside the plot, one entry per series in its colour. A compared model's names ("late: image, probe fit
 * on text") are longer than the legend is wide, so they wrap at words onto lines of their own.
 */
function legend(series: Series[], swatch: (color: string, y: number) => string): string {
  let s = '';
  let y = M.top;
  series.forEach((ser, k) => {
    const lines = wrapWords(ser.name, LEGEND_CHARS);
    s += swatch(COLORS[k % COLORS.length], y);
    lines.forEach((line, i) => (s += `<text x="${W - M.right + 30}" y="${y + 5 + 13 * i}">${esc(line)}</text>`));
    s += '\n';
    y += 18 + 13 * (lines.length - 1);
  });
  return s;
}

/** Long titles shrink to stay inside the figure (about 0.6 em per character in DejaVu Sans bold). */
function titleSize(title: string): number {
  return Math.max(9, Math.min(15, Math.floor((W - 20) / (0.62 * Math.max(1, title.length)))));
}

/** Round tick values; `integer` axes (layers) never get fractional ticks. */
function ticks(lo: number, hi: number, n = 5, integer = false): number[] {
  if (!(hi > lo)) return [lo];
  const step0 = Math.max((hi - lo) / n, integer ? 1 : 0);
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => s >= step0) ?? step0;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

function axes(f: Frame, x: (v: number) => number, y: (v: number) => number, xt: number[], yt: number[], height = H): string {
  const bottom = height - M.bottom;
  let s = `<g stroke="#444" stroke-width="1"><line x1="${M.left}" y1="${bottom}" x2="${W - M.right}" y2="${bottom}"/><line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${bottom}"/></g>\n`;
  for (const t of xt) s += `<line x1="${x(t)}" y1="${bottom}" x2="${x(t)}" y2="${bottom + 4}" stroke="#444"/><text x="${x(t)}" y="${bottom + 17}" text-anchor="middle">${num(t)}</text>\n`;
  for (const t of yt)
    s += `<line x1="${M.left}" y1="${y(t)}" x2="${W - M.right}" y2="${y(t)}" stroke="#e5e5e5"/><text x="${M.left - 6}" y="${y(t) + 4}" text-anchor="end">${num(t)}</text>\n`;
  s += `<text x="${(M.left + W - M.right) / 2}" y="${height - 12}" text-anchor="middle">${esc(f.xLabel)}</text>\n`;
  s += `<text transform="translate(16 ${(M.top + bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(f.yLabel)}</text>\n`;
  return s;
}

/** Curves over layers; NaN (not computed yet) breaks a curve. `marks`: dashed vertical lines with a label. */
export function lineChart(f: Frame, x: number[], series: Series[], marks: { at: number; label: string }[] = [], yRange?: [number, number]): string {
  const all = series.flatMap((s) => s.y).filter(Number.isFinite);
  const [lo, hi] = yRange ?? [Math.min(0, ...all), Math.max(1e-9, ...all)];
  const [x0, x1] = [Math.min(...x), Math.max(...x) > Math.min(...x) ? Math.max(...x) : Math.min(...x) + 1];
  const px = (v: number) => M.left + ((v - x0) / (x1 - x0)) * (W - M.left - M.right);
  const py = (v: number) => H - M.bottom - ((v - lo) / (hi - lo || 1)) * (H - M.top - M.bottom);
  let s = axes(f, px, py, ticks(x0, x1, Math.min(10, x.length), true), ticks(lo, hi));
  series.forEach((ser, k) => {
    const color = COLORS[k % COLORS.length];
    let d = '';
    let pen = false;
    ser.y.forEach((v, i) => {
      if (!Number.isFinite(v)) return void (pen = false);
      d += `${pen ? 'L' : 'M'}${num(px(x[i]))} ${num(py(v))} `;
      pen = true;
    });
    s += `<path d="${d.trim()}" fill="none" stroke="${color}" stroke-width="2"/>\n`;
    ser.y.forEach((v, i) => Number.isFinite(v) && (s += `<circle cx="${num(px(x[i]))}" cy="${num(py(v))}" r="2.5" fill="${color}"/>`));
  });
  s += legend(series, (color, y) => `<rect x="${W - M.right + 12}" y="${y}" width="12" height="3" fill="${color}"/>`);
  // One line of text per mark: two compared models' switches a layer apart would print their labels over each
  // other (the live view staggers them the same way, layer-switch.ts yshift).
  marks.forEach((m, k) => {
    s += `<line x1="${px(m.at)}" y1="${M.top}" x2="${px(m.at)}" y2="${H - M.bottom}" stroke="#555" stroke-dasharray="4 3"/><text x="${px(m.at) + 4}" y="${M.top + 12 + 14 * k}" fill="#555">${esc(m.label)}</text>\n`;
  });
  return svg(s, f.title);
}

const VIRIDIS = ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'];
const DIVERGING = [...DIVERGING_STOPS];

function lerpColor(stops: string[], t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const c = (h: string, k: number) => parseInt(h.slice(1 + 2 * k, 3 + 2 * k), 16);
  return '#' + [0, 1, 2].map((k) => Math.round(c(stops[i], k) + (c(stops[i + 1], k) - c(stops[i], k)) * f).toString(16).padStart(2, '0')).join('');
}

/**
 * values[row][col]; diverging maps are centred on 0 (relative changes), the others run min–max (viridis).
 * `bound`: the diverging scale's ±bound when several panels share it (a comparison), else their own largest |v|.
 */
export function heatmap(f: Frame, rows: string[], cols: number[], values: number[][], diverging = false, bound0?: number): string {
  const rowH = Math.max(12, Math.min(28, Math.floor(260 / Math.max(1, rows.length))));
  // Tall enough for the colour scale (20 steps of 8 px and its labels) however few rows there are.
  const height = Math.max(M.top + M.bottom + rowH * rows.length, M.top + 200);
  const all = values.flat().filter(Number.isFinite);
  const lo = Math.min(...all, diverging ? 0 : Infinity);
  const hi = Math.max(...all, diverging ? 0 : -Infinity);
  const bound = bound0 ?? (Math.max(Math.abs(lo), Math.abs(hi)) || 1);
  const t = (v: number) => (diverging ? (v / bound + 1) / 2 : hi > lo ? (v - lo) / (hi - lo) : 0.5);
  const left = Math.min(190, 12 + 7 * Math.max(4, ...rows.map((r) => Math.min(24, r.length))));
  const scaleW = (W - left - M.right) / Math.max(1, cols.length);
  let s = '';
  values.forEach((row, r) =>
    row.forEach((v, c) => {
      const fill = Number.isFinite(v) ? lerpColor(diverging ? DIVERGING : VIRIDIS, t(v)) : '#dddddd';
      s += `<rect x="${num(left + c * scaleW)}" y="${M.top + r * rowH}" width="${num(scaleW + 0.5)}" height="${rowH + 0.5}" fill="${fill}"><title>${esc(rows[r])}, layer ${cols[c]}: ${Number.isFinite(v) ? num(v) : 'n/a'}</title></rect>`;
    }),
  );
  s += '\n';
  rows.forEach((name, r) => (s += `<text x="${left - 6}" y="${M.top + r * rowH + rowH / 2 + 4}" text-anchor="end">${esc(name.length > 24 ? name.slice(0, 23) + '…' : name)}</text>`));
  const every = Math.ceil(cols.length / 12);
  const below = M.top + rowH * rows.length;
  cols.forEach((l, c) => c % every === 0 && (s += `<text x="${num(left + (c + 0.5) * scaleW)}" y="${below + 16}" text-anchor="middle">${l}</text>`));
  s += `\n<text x="${(left + W - M.right) / 2}" y="${below + 36}" text-anchor="middle">${esc(f.xLabel)}</text>\n`;
  // Colour scale.
  const [a, b] = diverging ? [-bound, bound] : [lo, hi];
  for (let i = 0; i < 20; i++) s += `<rect x="${W - M.right + 20}" y="${M.top + (19 - i) * 8}" width="14" height="8.5" fill="${lerpColor(diverging ? DIVERGING : VIRIDIS, i / 19)}"/>`;
  s += `<text x="${W - M.right + 40}" y="${M.top + 8}">${num(b)}</text><text x="${W - M.right + 40}" y="${M.top + 160}">${num(a)}</text><text x="${W - M.right + 20}" y="${M.top + 180}">${esc(f.yLabel)}</text>\n`;
  return svg(s, f.title, height);
}

/** Bars per group, one per series (recall gap: text vs image accuracy per entity type). */
export function barChart(f: Frame, groups: string[], series: Series[]): string {
  const hi = Math.max(1, ...series.flatMap((s) => s.y).filter(Number.isFinite));
  const py = (v: number) => H - M.bottom - (v / hi) * (H - M.top - M.bottom);
  const gw = (W - M.left - M.right) / Math.max(1, groups.length);
  const bw = (gw * 0.8) / Math.max(1, series.length);
  let s = axes(f, () => -100, py, [], ticks(0, hi));
  groups.forEach((g, i) => {
    series.forEach((ser, k) => {
      const v = ser.y[i];
      if (!Number.isFinite(v)) return;
      s += `<rect x="${num(M.left + i * gw + gw * 0.1 + k * bw)}" y="${num(py(v))}" width="${num(bw - 2)}" height="${num(H - M.bottom - py(v))}" fill="${COLORS[k % COLORS.length]}"><title>${esc(g)} ${esc(ser.name)}: ${num(v)}</title></rect>`;
    });
    s += `<text x="${num(M.left + (i + 0.5) * gw)}" y="${H - M.bottom + 17}" text-anchor="middle">${esc(g)}</text>\n`;
  });
  s += legend(series, (color, y) => `<rect x="${W - M.right + 12}" y="${y - 4}" width="12" height="10" fill="${color}"/>`);
  return svg(s, f.title);
}

const posLabel = (p: PositionInfo) => p.label;
const transpose = (m: number[][]) => (m.length ? m[0].map((_, j) => m.map((row) => row[j])) : []);

type Mark = { at: number; label: string };

/** A curve view's series and marks for one model's data (the kinds drawn as curves over layers). */
function curves(state: AnyViewState, data: unknown): { x: number[]; series: Series[]; marks: Mark[]; frame: Omit<Frame, 'title'>; yRange?: [number, number] } | null {
  switch (state.view) {
    case 'layer-switch': {
      const d = data as typeof state.data;
      return {
        x: d.layers,
        series: [{ name: 'names donor', y: d.donorFraction }, { name: 'names target', y: d.targetFraction }],
        marks: d.switchLayer != null ? [{ at: d.switchLayer, label: `switch ${d.switchLayer}` }] : [],
        frame: { xLabel: 'layer patched', yLabel: 'fraction of generations' },
        yRange: [0, 1],
      };
    }
    case 'freeze-curve': {
      const d = data as typeof state.data;
      const series = d.series.length ? d.series : [{ name: 'identified', identified: d.identified }];
      return {
        x: d.sourceLayers,
        series: series.map((s) => ({ name: s.name, y: s.identified })),
        marks: d.freezeUntil != null ? [{ at: d.freezeUntil, label: `frozen to ${d.freezeUntil}` }] : [],
        frame: { xLabel: 'source layer', yLabel: 'entities identified' },
      };
    }
    case 'probe-accuracy': {
      const d = data as typeof state.data;
      const series = [...(d.image ? [{ name: 'image', y: d.image }] : []), ...(d.text ? [{ name: 'text', y: d.text }] : []), ...(d.transfer ? [{ name: 'image, probe fit on text', y: d.transfer }] : [])];
      if (d.chance != null) series.push({ name: 'chance', y: d.layers.map(() => d.chance as number) });
      // Each resolution layer marked, with its bootstrap interval where the probe computed one (a paper figure
      // should say whether a lag is more than noise).
      const ci = (c: Interval | undefined) => (c ? ` (95 % CI ${formatInterval(c)})` : '');
      const marks: Mark[] = (
        [
          ['image', d.resolution.image, d.resolutionCI?.image],
          ['text', d.resolution.text, d.resolutionCI?.text],
          ['image, text probe', d.transfer ? (d.resolution.transfer ?? null) : null, d.resolutionCI?.transfer],
        ] as const
      ).flatMap(([name, at, c]) => (at === null ? [] : [{ at, label: `${name} resolved ${at}${ci(c)}` }]));
      return { x: d.layers, series, marks, frame: { xLabel: 'layer', yLabel: 'probe accuracy' }, yRange: [0, 1] };
    }
    case 'recovery-curve': {
      const d = data as typeof state.data;
      // Baselines as flat series, so a reader sees how much of the gap each patched layer closes.
      const flat = (name: string, v: number | null) => (v == null ? [] : [{ name, y: d.layers.map(() => v) }]);
      return {
        x: d.layers,
        series: [{ name: `patched${d.position ? ` (${d.position})` : ''}`, y: d.patched }, ...flat('image', d.imageAcc), ...flat('text', d.textAcc), ...flat('chain of thought', d.cotAcc)],
        marks: [],
        frame: { xLabel: 'layer patched from the backbone', yLabel: 'factual accuracy' },
        yRange: [0, 1],
      };
    }
    default:
      return null;
  }
}

/** SVG documents one above the other in one document (one panel per compared model). */
function stack(svgs: string[]): string {
  let y = 0;
  let body = '';
  for (const doc of svgs) {
    const h = Number(/height="([\d.]+)"/.exec(doc)?.[1] ?? H);
    body += `<g transform="translate(0 ${y})">${doc.replace(/^<svg[^>]*>\n?/, '').replace(/<\/svg>\n?$/, '')}</g>\n`;
    y += h;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" ${FONT} font-size="12">\n${body}</svg>\n`;
}

/**
 * One view state (validated) as an SVG document. Compared models (compareResults) share one chart: curves and
 * bars carry the model's name in the legend; heat maps get one panel per model.
 */
export function viewToSvg(state: AnyViewState): string {
  const title = state.title || state.view;
  const models = [{ label: state.label, data: state.data as unknown }, ...state.compare];
  const named = (label: string | null, name: string) => (models.length > 1 && label ? `${label}: ${name}` : name);
  const c = curves(state, state.data);
  if (c) {
    const series: Series[] = [];
    const marks: Mark[] = [];
    for (const m of models) {
      const mc = curves(state, m.data)!;
      // On the first model's layer axis (a compared model may have run other layers).
      const at = new Map(mc.x.map((l, i) => [l, i]));
      series.push(...mc.series.map((s) => ({ name: named(m.label, s.name), y: c.x.map((l) => (at.has(l) ? s.y[at.get(l)!] : NaN)) })));
      marks.push(...mc.marks.map((k) => ({ at: k.at, label: named(m.label, k.label) })));
    }
    return lineChart({ title, ...c.frame }, c.x, series, marks, c.yRange);
  }
  if (models.length > 1 && state.view !== 'recall-gap') {
    // One panel per model, on one colour scale.
    const bound = Math.max(...models.map((m) => signedBound(state.view, m.data)));
    return stack(models.map((m) => viewToSvgPanel({ ...state, title: `${title}: ${m.label}`, label: null, data: m.data, compare: [] } as AnyViewState, bound)));
  }
  return viewToSvgPanel(state);
}

/** The largest |value| of a signed heat map's data (knockout's Δp/p, attribution's scores); 0 for the others. */
function signedBound(view: AnyViewState['view'], data: unknown): number {
  const values = view === 'knockout-map' ? (data as { relChange: number[][] }).relChange : view === 'attribution-map' ? (data as { scores: number[][] }).scores : [];
  // A reduce, not a spread: an attribution map of a real prompt has tens of thousands of values.
  return values.flat().reduce((m, v) => (Number.isFinite(v) ? Math.max(m, Math.abs(v)) : m), 0);
}

/** One model's heat map or bars; `bound`: a diverging scale shared with other panels. */
function viewToSvgPanel(state: AnyViewState, bound?: number): string {
  const title = state.title || state.view;
  const models = [{ label: state.label, data: state.data as unknown }, ...state.compare];
  const named = (label: string | null, name: string) => (models.length > 1 && label ? `${label}: ${name}` : name);
  switch (state.view) {
    case 'knockout-map': {
      const d = state.data;
      return heatmap({ title, xLabel: 'layer (window start)', yLabel: 'rel. change' }, d.edgeSets, d.layers, d.relChange, true, bound || undefined);
    }
    case 'logit-lens': {
      const d = state.data;
      // Probability of the target token if named, else of the top-1 token, per [position][layer].
      const byLayer = d.target ? d.target.probs : d.topProbs.map((layer) => layer.map((ks) => ks[0] ?? NaN));
      return heatmap({ title: d.target ? `${title}: p(${d.target.token})` : `${title}: top-1 probability`, xLabel: 'layer', yLabel: 'probability' }, d.positions.map(posLabel), d.layers, transpose(byLayer));
    }
    case 'attribution-map': {
      const d = state.data;
      const scores = heatmap({ title: `${title}: ${attributionMapTitle(d, false)}`, xLabel: 'layer', yLabel: d.metric ?? 'attribution' }, d.positions.map(posLabel), d.layers, transpose(d.scores), true, bound || undefined);
      // The cosine map below the scores, on its own fixed [-1, 1] scale (never the scores' bound).
      const sim = d.similarity;
      return sim ? stack([scores, heatmap({ title: `${title}: ${sim.title}`, xLabel: 'layer', yLabel: 'cosine' }, sim.positions.map(posLabel), d.layers, transpose(sim.scores), true, 1)]) : scores;
    }
    case 'recall-gap': {
      const rowsOf = (d: typeof state.data) => [...d.rows, ...(d.overall ? [{ ...d.overall, type: 'all' }] : [])];
      const groups = rowsOf(state.data).map((r) => r.type);
      const series: Series[] = [];
      for (const m of models) {
        const byType = new Map(rowsOf(m.data as typeof state.data).map((r) => [r.type, r]));
        series.push(
          { name: named(m.label, 'text'), y: groups.map((g) => byType.get(g)?.textAcc ?? NaN) },
          { name: named(m.label, 'image'), y: groups.map((g) => byType.get(g)?.imageAcc ?? NaN) },
        );
      }
      return barChart({ title, xLabel: 'entity type', yLabel: 'accuracy' }, groups, series);
    }
    default:
      throw new Error(`viewToSvg: no drawing for ${state.view}`);
  }
}
