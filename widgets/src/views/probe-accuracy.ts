// probe-accuracy: linear-probe accuracy per layer on image and text prompts, threshold and chance lines,
// and the resolution layer of each modality marked; compared models overlaid, one colour each.

import { formatInterval, type Interval } from '../../../src/experiments/resolution';
import type { ViewState } from '../../../src/report/views';
import type { Trace } from '../plotly-types';
import { COLORS, PlotSlot, customNumber, drawnModels, escapeHtml, gaps, layerRange, markerLine, pct, pointData, seriesLine, seriesName } from './plot';
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
      const traces: Trace[] = [];
      const shapes: Record<string, unknown>[] = [];
      const annotations: Record<string, unknown>[] = [];
      const models = drawnModels(state);
      const xRange = layerRange(models);
      for (const m of models) {
        const md = m.data;
        const series = [
          // A probe of one modality draws only its curve (an empty series left a legend entry that drew nothing).
          ...(md.image ? [{ name: 'image prompt', ys: md.image, color: COLORS.image, row: 0 }] : []),
          ...(md.text ? [{ name: 'text prompt', ys: md.text, color: COLORS.text, row: 1 }] : []),
          // Fit on text, read on the image: where the image holds the entity as the LM's text run does.
          ...(md.transfer ? [{ name: 'image, probe fit on text', ys: md.transfer, color: COLORS.image, row: 0, dash: 'dot' }] : []),
        ];
        series.forEach((s, k) =>
          traces.push({
            type: 'scatter', mode: 'lines+markers', name: seriesName(m, s.name), x: md.layers, y: gaps(s.ys), legendgroup: m.label ?? undefined,
            line: seriesLine(m, k, { color: s.color, ...('dash' in s ? { dash: s.dash } : {}) }), marker: { size: 6 },
            customdata: md.layers.map((l, i) => pointData(m, l, s.row, `layer ${l} · ${s.name}<br>probe accuracy (${what}${where}): ${pct(s.ys[i])}<br><i>click to run this layer</i>`)),
            hovertemplate: '%{customdata[2]}<extra></extra>',
          }),
        );
        const res: [number | null, string, string, Interval | undefined][] = [
          [md.resolution.image, 'image', COLORS.image, md.resolutionCI?.image],
          [md.resolution.text, 'text', COLORS.text, md.resolutionCI?.text],
          [md.transfer ? (md.resolution.transfer ?? null) : null, 'image (text probe)', COLORS.image, md.resolutionCI?.transfer],
        ];
        const last = md.layers[md.layers.length - 1];
        for (const [k, [layer, name, color, ci]] of res.entries()) {
          if (layer === null) continue;
          const mark = markerLine(layer, `${seriesName(m, name)} resolved L${layer}${ci ? ` (95 % CI ${formatInterval(ci, 'L')})` : ''}`, m.color ?? color, 'paper', xRange);
          shapes.push(mark.shape);
          // The interval as a faint band: a wide one says the layer is a toss-up between nearly equal accuracies.
          if (ci && ci.low !== null && (ci.high ?? last) > ci.low) {
            shapes.push({ type: 'rect', xref: 'x', yref: 'paper', x0: ci.low, x1: ci.high ?? last, y0: 0, y1: 1, fillcolor: m.color ?? color, opacity: 0.08, line: { width: 0 }, layer: 'below' });
          }
          // Labels of one model stack by series, models stack above each other.
          annotations.push({ ...mark.annotation, yshift: 12 * (k + 3 * m.index) });
        }
      }
      const hline = (y: number, label: string, dash: string) => {
        shapes.push({ type: 'line', xref: 'paper', yref: 'y', x0: 0, x1: 1, y0: y, y1: y, line: { color: COLORS.neutral, width: 1, dash } });
        annotations.push({ xref: 'paper', yref: 'y', x: 1, y, text: label, showarrow: false, xanchor: 'right', yanchor: 'bottom', font: { size: 10, color: COLORS.neutral } });
      };
      // A share of each curve's best is no one accuracy: the axis says it instead of a line (a note inside the plot
      // ran into the chance line's label).
      const peakRule = d.threshold !== null && d.thresholdOf === 'peak';
      if (d.threshold !== null && !peakRule) hline(d.threshold, `threshold ${pct(d.threshold, 0)}`, 'dash');
      if (d.chance !== null) hline(d.chance, 'chance', 'dot');
      await plot.draw(traces, {
        xaxis: { title: { text: peakRule ? `layer (resolved: the first at ${pct(d.threshold ?? NaN, 0)} of its curve's best)` : 'layer' }, dtick: d.layers.length > 30 ? 5 : 1, range: xRange },
        yaxis: { title: { text: `probe accuracy (${what})` }, range: [-0.02, 1.05], tickformat: '.0%' },
        // The peak rule's longer axis title takes the legend's old place: the legend moves down.
        legend: { orientation: 'h', y: peakRule ? -0.36 : -0.25 },
        // Room above the plot for each compared model's row of resolution labels.
        margin: { l: 60, r: 20, t: 40 + 36 * state.compare.length, b: peakRule ? 110 : 80 },
        shapes,
        annotations,
      });
    },
    plots: () => [{ name: plot.name, div: plot.div }],
    dispose: () => plot.dispose(),
  };
};
