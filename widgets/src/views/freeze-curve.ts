// freeze-curve: share of entities still identified when image tokens are frozen from source layer l, the
// early region shaded, and (when given) early- vs late-identified accuracy side by side.

import type { FreezeCurveData, ViewState } from '../../../src/report/views';
import type { Layout, Trace } from '../plotly-types';
import { COLORS, PlotSlot, customNumber, escapeHtml, gaps, pct } from './plot';
import type { RendererFactory } from './types';

const SERIES_COLORS = ['#1B9E77', '#7570B3', '#E7298A', '#66A61E', '#E6AB02', '#A6761D'];

export const freezeCurve: RendererFactory<'freeze-curve'> = (body, ctx) => {
  const plot = new PlotSlot(ctx.plotly, body, 'freeze-curve', 360);
  plot.onClick((p) => {
    const layer = customNumber(p, 0);
    if (layer !== null) ctx.runCell({ layer }, `frozen from layer ${layer}`);
  });

  function figure(d: FreezeCurveData): { traces: Trace[]; layout: Layout } {
    const until = d.freezeUntil !== null ? ` to ${d.freezeUntil}` : '';
    const hover = (l: number, name: string, f: number) =>
      `frozen from layer ${l}${until}<br>${escapeHtml(name)}: ${pct(f)} still identified` +
      (d.entities !== null ? ` (of ${d.entities})` : '') + '<br><i>click to run this layer</i>';
    const traces: Trace[] = [
      {
        type: 'scatter', mode: 'lines+markers', name: 'all entities', x: d.sourceLayers, y: gaps(d.identified),
        line: { color: COLORS.image, width: 2.5 }, marker: { size: 6 },
        customdata: d.sourceLayers.map((l, i) => [l, 0, hover(l, 'all entities', d.identified[i])]),
        hovertemplate: '%{customdata[2]}<extra></extra>',
      },
      ...d.series.map((s, k): Trace => ({
        type: 'scatter', mode: 'lines', name: s.name, x: d.sourceLayers, y: gaps(s.identified),
        line: { color: SERIES_COLORS[k % SERIES_COLORS.length], width: 1.5, dash: 'dot' },
        customdata: d.sourceLayers.map((l, i) => [l, k + 1, hover(l, s.name, s.identified[i])]),
        hovertemplate: '%{customdata[2]}<extra></extra>',
      })),
    ];
    const shapes: Record<string, unknown>[] = [];
    const annotations: Record<string, unknown>[] = [];
    if (d.earlyCutoff !== null && d.sourceLayers.length > 0) {
      const x0 = Math.min(...d.sourceLayers) - 0.5;
      shapes.push({ type: 'rect', xref: 'x', yref: 'paper', x0, x1: d.earlyCutoff - 0.5, y0: 0, y1: 1, fillcolor: COLORS.early, line: { width: 0 }, layer: 'below' });
      annotations.push({ xref: 'x', yref: 'paper', x: (x0 + d.earlyCutoff - 0.5) / 2, y: 1, text: 'early', showarrow: false, yanchor: 'bottom', font: { size: 11 } });
    }
    const layout: Layout = {
      xaxis: { title: { text: `source layer l (image tokens frozen from l${until})` }, domain: d.split ? [0, 0.6] : [0, 1], dtick: d.sourceLayers.length > 30 ? 5 : 1 },
      yaxis: { title: { text: 'still identified' }, range: [-0.02, 1.05], tickformat: '.0%' },
      legend: { orientation: 'h', y: -0.25 },
      margin: { l: 60, r: 20, t: 30, b: 80 },
      shapes,
      annotations,
    };
    if (d.split) {
      const groups = [
        { name: `early (n=${d.split.early.n})`, g: d.split.early },
        { name: `late (n=${d.split.late.n})`, g: d.split.late },
      ];
      const bar = (label: 'text' | 'image'): Trace => ({
        type: 'bar', name: `${label} accuracy`, xaxis: 'x2', yaxis: 'y2',
        x: groups.map((g) => g.name),
        y: groups.map((g) => (label === 'text' ? g.g.textAcc : g.g.visualAcc)),
        marker: { color: label === 'text' ? COLORS.text : COLORS.image },
        customdata: groups.map((g) => [NaN, 0, `${g.name}<br>text ${pct(g.g.textAcc)} · image ${pct(g.g.visualAcc)}<br>gap ${pct(g.g.textAcc - g.g.visualAcc)}`]),
        hovertemplate: '%{customdata[2]}<extra></extra>',
      });
      traces.push(bar('text'), bar('image'));
      layout.xaxis2 = { domain: [0.7, 1], anchor: 'y2' };
      layout.yaxis2 = { anchor: 'x2', range: [0, 1], tickformat: '.0%', title: { text: 'factual accuracy' } };
      layout.barmode = 'group';
      for (const [i, g] of groups.entries()) {
        annotations.push({ xref: 'x2', yref: 'y2', x: g.name, y: Math.max(g.g.textAcc, g.g.visualAcc), text: `gap ${pct(g.g.textAcc - g.g.visualAcc)}`, showarrow: false, yanchor: 'bottom', font: { size: 11 }, name: `gap${i}` });
      }
    }
    return { traces, layout };
  }

  return {
    async update(state: ViewState<'freeze-curve'>) {
      const { traces, layout } = figure(state.data);
      await plot.draw(traces, layout);
    },
    plots: () => [{ name: plot.name, div: plot.div }],
    dispose: () => plot.dispose(),
  };
};
