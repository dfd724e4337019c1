// freeze-curve: share of entities still identified when image tokens are frozen from source layer l, the
// early region shaded, and (when given) early- vs late-identified accuracy side by side; compared models
// overlaid, one colour each.

import type { FreezeCurveData, ViewState } from '../../../src/report/views';
import type { Layout, Trace } from '../plotly-types';
import { COLORS, PlotSlot, customNumber, drawnModels, escapeHtml, gaps, pct, pointData, seriesLine, seriesName, type DrawnModel } from './plot';
import type { RendererFactory } from './types';

const SERIES_COLORS = ['#1B9E77', '#7570B3', '#E7298A', '#66A61E', '#E6AB02', '#A6761D'];

export const freezeCurve: RendererFactory<'freeze-curve'> = (body, ctx) => {
  const plot = new PlotSlot(ctx.plotly, body, 'freeze-curve', 360);
  plot.onClick((p) => {
    const layer = customNumber(p, 0);
    if (layer !== null) ctx.runCell({ layer }, `frozen from layer ${layer}`);
  });

  function figure(state: ViewState<'freeze-curve'>): { traces: Trace[]; layout: Layout } {
    const d = state.data;
    const models = drawnModels(state);
    const until = d.freezeUntil !== null ? ` to ${d.freezeUntil}` : '';
    const traces: Trace[] = [];
    for (const m of models) {
      const md = m.data;
      const hover = (l: number, name: string, f: number) =>
        `frozen from layer ${l}${until}<br>${escapeHtml(name)}: ${pct(f)} still identified` +
        (md.entities !== null ? ` (of ${md.entities})` : '') + '<br><i>click to run this layer</i>';
      traces.push(
        {
          type: 'scatter', mode: 'lines+markers', name: seriesName(m, 'all entities'), x: md.sourceLayers, y: gaps(md.identified), legendgroup: m.label ?? undefined,
          line: { ...seriesLine(m, 0, { color: COLORS.image }), width: 2.5 }, marker: { size: 6 },
          customdata: md.sourceLayers.map((l, i) => pointData(m, l, 0, hover(l, 'all entities', md.identified[i]))),
          hovertemplate: '%{customdata[2]}<extra></extra>',
        },
        ...md.series.map((s, k): Trace => ({
          type: 'scatter', mode: 'lines', name: seriesName(m, s.name), x: md.sourceLayers, y: gaps(s.identified), legendgroup: m.label ?? undefined,
          // Compared, the per-type curves of every model would bury the models' own: listed, drawn on a click.
          ...(m.color !== null ? { visible: 'legendonly' } : {}),
          line: { ...seriesLine(m, k + 1, { color: SERIES_COLORS[k % SERIES_COLORS.length], dash: 'dot' }), width: 1.5 },
          customdata: md.sourceLayers.map((l, i) => pointData(m, l, k + 1, hover(l, s.name, s.identified[i]))),
          hovertemplate: '%{customdata[2]}<extra></extra>',
        })),
      );
    }
    const split = models.filter((m) => m.data.split !== null);
    const shapes: Record<string, unknown>[] = [];
    const annotations: Record<string, unknown>[] = [];
    if (d.earlyCutoff !== null && d.sourceLayers.length > 0) {
      const x0 = Math.min(...d.sourceLayers) - 0.5;
      shapes.push({ type: 'rect', xref: 'x', yref: 'paper', x0, x1: d.earlyCutoff - 0.5, y0: 0, y1: 1, fillcolor: COLORS.early, line: { width: 0 }, layer: 'below' });
      annotations.push({ xref: 'x', yref: 'paper', x: (x0 + d.earlyCutoff - 0.5) / 2, y: 1, text: 'early', showarrow: false, yanchor: 'bottom', font: { size: 11 } });
    }
    const layout: Layout = {
      xaxis: { title: { text: `source layer l (image tokens frozen from l${until})` }, domain: split.length > 0 ? [0, 0.6] : [0, 1], dtick: d.sourceLayers.length > 30 ? 5 : 1 },
      yaxis: { title: { text: 'still identified' }, range: [-0.02, 1.05], tickformat: '.0%' },
      legend: { orientation: 'h', y: -0.25 },
      margin: { l: 60, r: 20, t: 30, b: 80 },
      shapes,
      annotations,
    };
    if (split.length > 0) {
      // One model: its group sizes on the axis; several share the axis and give their sizes on hover.
      const groupName = (name: string, n: number) => (models.length === 1 ? `${name} (n=${n})` : name);
      const bar = (m: DrawnModel<FreezeCurveData>, label: 'text' | 'image'): Trace => {
        const sp = m.data.split!;
        const groups = [
          { name: groupName('early', sp.early.n), n: sp.early.n, g: sp.early },
          { name: groupName('late', sp.late.n), n: sp.late.n, g: sp.late },
        ];
        const own = label === 'text' ? COLORS.text : COLORS.image;
        return {
          type: 'bar', name: seriesName(m, `${label} accuracy`), xaxis: 'x2', yaxis: 'y2', legendgroup: m.label ?? undefined,
          x: groups.map((g) => g.name),
          y: groups.map((g) => (label === 'text' ? g.g.textAcc : g.g.visualAcc)),
          // In a comparison the model keeps its colour and the image bars are hatched.
          marker: { color: m.color ?? own, ...(m.color !== null && label === 'image' ? { pattern: { shape: '/' } } : {}) },
          customdata: groups.map((g) => [NaN, 0, `${escapeHtml(seriesName(m, g.name))}${models.length === 1 ? '' : ` (n=${g.n})`}<br>text ${pct(g.g.textAcc)} · image ${pct(g.g.visualAcc)}<br>gap ${pct(g.g.textAcc - g.g.visualAcc)}`]),
          hovertemplate: '%{customdata[2]}<extra></extra>',
        };
      };
      for (const m of split) traces.push(bar(m, 'text'), bar(m, 'image'));
      layout.xaxis2 = { domain: [0.7, 1], anchor: 'y2' };
      layout.yaxis2 = { anchor: 'x2', range: [0, 1], tickformat: '.0%', title: { text: 'factual accuracy' } };
      layout.barmode = 'group';
      if (split.length === 1) {
        const sp = split[0].data.split!;
        for (const [i, g] of [sp.early, sp.late].entries()) {
          annotations.push({ xref: 'x2', yref: 'y2', x: groupName(i === 0 ? 'early' : 'late', g.n), y: Math.max(g.textAcc, g.visualAcc), text: `gap ${pct(g.textAcc - g.visualAcc)}`, showarrow: false, yanchor: 'bottom', font: { size: 11 }, name: `gap${i}` });
        }
      }
    }
    return { traces, layout };
  }

  return {
    async update(state: ViewState<'freeze-curve'>) {
      const { traces, layout } = figure(state);
      await plot.draw(traces, layout);
    },
    plots: () => [{ name: plot.name, div: plot.div }],
    dispose: () => plot.dispose(),
  };
};
