// knockout-map: relative change of the answer's probability when attention edges are blocked in a window
// of layers, rows = edge sets, columns = window centres. Click a cell to re-run it.

import type { ViewState } from '../../../src/report/views';
import { DIVERGING, PlotSlot, customNumber, escapeHtml, gaps2, maxAbs, pct } from './plot';
import type { RendererFactory } from './types';

export const knockoutMap: RendererFactory<'knockout-map'> = (body, ctx) => {
  const plot = new PlotSlot(ctx.plotly, body, 'knockout-map', 320);
  plot.onClick((p) => {
    const layer = customNumber(p, 0);
    const row = customNumber(p, 1);
    if (layer !== null && row !== null) ctx.runCell({ layer, row }, `layer ${layer}, edge set ${row}`);
  });

  return {
    async update(state: ViewState<'knockout-map'>) {
      const d = state.data;
      const half = d.window !== null ? Math.floor(d.window / 2) : null;
      // One colour scale for every panel of a comparison (the stacked panels pass the others as `compare`).
      const bound = Math.max(0.05, ...[d, ...state.compare.map((c) => c.data)].map((x) => maxAbs(x.relChange.flat())));
      const custom = d.edgeSets.map((edge, r) =>
        d.layers.map((l, c) => {
          const v = d.relChange[r][c];
          const acc = d.accuracy?.[r]?.[c];
          const window = half !== null ? `layers ${l - half}..${l + half}` : `layer ${l}`;
          const text =
            `${escapeHtml(edge)} blocked in ${window}<br>` +
            (Number.isFinite(v) ? `Δp/p = ${v >= 0 ? '+' : ''}${pct(v)}` : 'not computed yet') +
            (acc !== undefined && Number.isFinite(acc) ? `<br>accuracy ${pct(acc)}` : '') +
            '<br><i>click to run this cell</i>';
          return [l, r, text];
        }),
      );
      await plot.draw(
        [
          {
            type: 'heatmap', x: d.layers, y: d.edgeSets, z: gaps2(d.relChange), customdata: custom,
            hovertemplate: '%{customdata[2]}<extra></extra>', colorscale: DIVERGING, zmid: 0, zmin: -bound, zmax: bound,
            xgap: 1, ygap: 1, colorbar: { title: { text: 'Δp / p', side: 'right' }, tickformat: '.0%', thickness: 12 },
          },
        ],
        {
          xaxis: { title: { text: `window centre layer${d.window !== null ? ` (w = ${d.window})` : ''}` }, dtick: d.layers.length > 30 ? 5 : 1 },
          yaxis: { automargin: true, autorange: 'reversed' },
          margin: { l: 110, r: 20, t: 20, b: 50 },
        },
      );
    },
    plots: () => [{ name: plot.name, div: plot.div }],
    dispose: () => plot.dispose(),
  };
};
