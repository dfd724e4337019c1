// recovery-curve: accuracy of image prompts when the text-only backbone's entity state is patched in at each
// layer, against the image, text and chain-of-thought baselines (Cohen et al. §5: how much of the gap returns);
// compared models overlaid, one colour each.

import type { ViewState } from '../../../src/report/views';
import type { Trace } from '../plotly-types';
import { COLORS, PlotSlot, customNumber, drawnModels, escapeHtml, gaps, labelShifts, pct, pointData, seriesLine, seriesName } from './plot';
import type { RendererFactory } from './types';

const HEIGHT = 340;
const MARGIN = { l: 60, r: 20, t: 40, b: 80 };
const Y_RANGE = [-0.02, 1.05];
// Pixels per unit of accuracy: the baselines' labels are spaced in pixels.
const PX_PER_UNIT = (HEIGHT - MARGIN.t - MARGIN.b) / (Y_RANGE[1] - Y_RANGE[0]);

export const recoveryCurve: RendererFactory<'recovery-curve'> = (body, ctx) => {
  const plot = new PlotSlot(ctx.plotly, body, 'recovery-curve', HEIGHT);
  plot.onClick((p) => {
    const layer = customNumber(p, 0);
    if (layer !== null) ctx.runCell({ layer }, `backbone state patched at layer ${layer}`);
  });

  return {
    async update(state: ViewState<'recovery-curve'>) {
      const d = state.data;
      const traces: Trace[] = [];
      const shapes: Record<string, unknown>[] = [];
      const annotations: Record<string, unknown>[] = [];
      for (const m of drawnModels(state)) {
        const md = m.data;
        const where = md.position ? ` at ${escapeHtml(md.position)}` : '';
        traces.push({
          type: 'scatter', mode: 'lines+markers', name: seriesName(m, 'patched from the backbone'), x: md.layers, y: gaps(md.patched), legendgroup: m.label ?? undefined,
          line: { ...seriesLine(m, 0, { color: COLORS.target }), width: 2.5 }, marker: { size: 6 },
          customdata: md.layers.map((l, i) => pointData(m, l, 0, `backbone state written${where} at layer ${l}<br>accuracy ${pct(md.patched[i])}<br><i>click to run this layer</i>`)),
          hovertemplate: '%{customdata[2]}<extra></extra>',
        });
        // The baselines as flat lines; in a comparison each model's in its colour, one dash per baseline.
        const baselines: [number | null, string, string][] = [
          [md.imageAcc, 'image prompt', COLORS.image],
          [md.textAcc, 'text prompt', COLORS.text],
          [md.cotAcc, 'image + chain of thought', COLORS.neutral],
        ];
        // A model's labels share one column: two baselines a few points apart (text 100 %, image 96.9 %) wrote over each other.
        const drawn = baselines.flatMap(([y, label, color], k) => (y === null ? [] : [{ y, label, color, k }]));
        const shifts = labelShifts(drawn.map((b) => b.y), PX_PER_UNIT);
        for (const [i, { y, label, color, k }] of drawn.entries()) {
          const line = m.color === null ? { color, width: 1, dash: 'dash' } : { ...seriesLine(m, k + 1, { color }), width: 1 };
          shapes.push({ type: 'line', xref: 'paper', yref: 'y', x0: 0, x1: 1, y0: y, y1: y, line });
          annotations.push({ xref: 'paper', yref: 'y', x: 1 - 0.3 * m.index, y, yshift: shifts[i], text: `${escapeHtml(seriesName(m, label))} ${pct(y)}`, showarrow: false, xanchor: 'right', yanchor: 'bottom', font: { size: 10, color: m.color ?? color } });
        }
      }
      await plot.draw(traces, {
        xaxis: { title: { text: 'layer the backbone state is written to' }, dtick: d.layers.length > 30 ? 5 : 1 },
        yaxis: { title: { text: 'factual accuracy' }, range: Y_RANGE, tickformat: '.0%' },
        legend: { orientation: 'h', y: -0.25 },
        margin: MARGIN,
        shapes,
        annotations,
      });
    },
    plots: () => [{ name: plot.name, div: plot.div }],
    dispose: () => plot.dispose(),
  };
};
