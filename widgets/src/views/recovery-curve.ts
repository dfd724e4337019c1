// recovery-curve: accuracy of image prompts when the text-only backbone's entity state is patched in at each
// layer, against the image, text and chain-of-thought baselines (Cohen et al. §5: how much of the gap returns).

import type { ViewState } from '../../../src/report/views';
import type { Trace } from '../plotly-types';
import { COLORS, PlotSlot, customNumber, escapeHtml, gaps, pct } from './plot';
import type { RendererFactory } from './types';

export const recoveryCurve: RendererFactory<'recovery-curve'> = (body, ctx) => {
  const plot = new PlotSlot(ctx.plotly, body, 'recovery-curve', 340);
  plot.onClick((p) => {
    const layer = customNumber(p, 0);
    if (layer !== null) ctx.runCell({ layer }, `backbone state patched at layer ${layer}`);
  });

  return {
    async update(state: ViewState<'recovery-curve'>) {
      const d = state.data;
      const where = d.position ? ` at ${escapeHtml(d.position)}` : '';
      const traces: Trace[] = [
        {
          type: 'scatter', mode: 'lines+markers', name: 'patched from the backbone', x: d.layers, y: gaps(d.patched),
          line: { color: COLORS.target, width: 2.5 }, marker: { size: 6 },
          customdata: d.layers.map((l, i) => [l, 0, `backbone state written${where} at layer ${l}<br>accuracy ${pct(d.patched[i])}<br><i>click to run this layer</i>`]),
          hovertemplate: '%{customdata[2]}<extra></extra>',
        },
      ];
      const shapes: Record<string, unknown>[] = [];
      const annotations: Record<string, unknown>[] = [];
      const baselines: [number | null, string, string][] = [
        [d.imageAcc, 'image prompt', COLORS.image],
        [d.textAcc, 'text prompt', COLORS.text],
        [d.cotAcc, 'image + chain of thought', COLORS.neutral],
      ];
      for (const [y, label, color] of baselines) {
        if (y === null) continue;
        shapes.push({ type: 'line', xref: 'paper', yref: 'y', x0: 0, x1: 1, y0: y, y1: y, line: { color, width: 1, dash: 'dash' } });
        annotations.push({ xref: 'paper', yref: 'y', x: 1, y, text: `${label} ${pct(y)}`, showarrow: false, xanchor: 'right', yanchor: 'bottom', font: { size: 10, color } });
      }
      await plot.draw(traces, {
        xaxis: { title: { text: 'layer the backbone state is written to' }, dtick: d.layers.length > 30 ? 5 : 1 },
        yaxis: { title: { text: 'factual accuracy' }, range: [-0.02, 1.05], tickformat: '.0%' },
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
