// probe-accuracy: linear-probe accuracy per layer on image and text prompts, threshold and chance lines,
// and the resolution layer of each modality marked.

import type { ViewState } from '../../../src/report/views';
import type { Trace } from '../plotly-types';
import { COLORS, PlotSlot, customNumber, escapeHtml, gaps, markerLine, pct } from './plot';
import type { RendererFactory } from './types';

export const probeAccuracy: RendererFactory<'probe-accuracy'> = (body, ctx) => {
  const plot = new PlotSlot(ctx.plotly, body, 'probe-accuracy', 340);
  plot.onClick((p) => {
    const layer = customNumber(p, 0);
    const row = customNumber(p, 1);
    if (layer !== null) ctx.runCell({ layer, row: row ?? 0 }, `layer ${layer}, ${row === 1 ? 'text' : 'image'} prompts`);
  });

  return {
    async update(state: ViewState<'probe-accuracy'>) {
      const d = state.data;
      const what = escapeHtml(d.target ?? 'entity');
      const where = d.position ? ` at ${escapeHtml(d.position)}` : '';
      const series = [
        { name: 'image prompt', ys: d.image, color: COLORS.image, row: 0 },
        ...(d.text ? [{ name: 'text prompt', ys: d.text, color: COLORS.text, row: 1 }] : []),
        // Fit on text, read on the image: where the image holds the entity as the LM's text run does.
        ...(d.transfer ? [{ name: 'image, probe fit on text', ys: d.transfer, color: COLORS.image, row: 0, dash: 'dot' }] : []),
      ];
      const traces: Trace[] = series.map((s) => ({
        type: 'scatter', mode: 'lines+markers', name: s.name, x: d.layers, y: gaps(s.ys),
        line: { color: s.color, width: 2, ...('dash' in s ? { dash: s.dash } : {}) }, marker: { size: 6 },
        customdata: d.layers.map((l, i) => [l, s.row, `layer ${l} · ${s.name}<br>probe accuracy (${what}${where}): ${pct(s.ys[i])}<br><i>click to run this layer</i>`]),
        hovertemplate: '%{customdata[2]}<extra></extra>',
      }));
      const shapes: Record<string, unknown>[] = [];
      const annotations: Record<string, unknown>[] = [];
      const hline = (y: number, label: string, dash: string) => {
        shapes.push({ type: 'line', xref: 'paper', yref: 'y', x0: 0, x1: 1, y0: y, y1: y, line: { color: COLORS.neutral, width: 1, dash } });
        annotations.push({ xref: 'paper', yref: 'y', x: 1, y, text: label, showarrow: false, xanchor: 'right', yanchor: 'bottom', font: { size: 10, color: COLORS.neutral } });
      };
      if (d.threshold !== null) hline(d.threshold, `threshold ${pct(d.threshold, 0)}`, 'dash');
      if (d.chance !== null) hline(d.chance, 'chance', 'dot');
      const res: [number | null, string, string][] = [
        [d.resolution.image, 'image', COLORS.image],
        [d.resolution.text, 'text', COLORS.text],
        [d.transfer ? (d.resolution.transfer ?? null) : null, 'image (text probe)', COLORS.image],
      ];
      for (const [layer, name, color] of res) {
        if (layer === null) continue;
        const m = markerLine(layer, `${name} resolved L${layer}`, color);
        shapes.push(m.shape);
        annotations.push({ ...m.annotation, yshift: name === 'text' ? 12 : name === 'image' ? 0 : 24 });
      }
      await plot.draw(traces, {
        xaxis: { title: { text: 'layer' }, dtick: d.layers.length > 30 ? 5 : 1 },
        yaxis: { title: { text: `probe accuracy (${what})` }, range: [-0.02, 1.05], tickformat: '.0%' },
        legend: { orientation: 'h', y: -0.25 },
        margin: { l: 60, r: 20, t: 40, b: 80 },
        shapes,
        annotations,
      });
    },
    plots: () => [{ name: plot.name, div: plot.div }],
    dispose: () => plot.dispose(),
  };
};
