// logit-lens: layer × position grid coloured by the top-1 probability (or a chosen token's probability),
// top-k tokens on hover; image positions also drawn on the patch grid over the picture for one layer.

import type { LogitLensData, ViewState } from '../../../src/report/views';
import { el } from '../dom';
import { PlotSlot, SEQUENTIAL, clickLayerPosition, escapeHtml, fmt } from './plot';
import { patchLayout, patchTraces } from './patches';
import { LayerPicker, imageSpanShapes, positionTicks, truncate } from './spans';
import type { RendererFactory } from './types';

export const logitLens: RendererFactory<'logit-lens'> = (body, ctx) => {
  const controls = el('div', { className: 'hs-controls' });
  body.append(controls);
  const colourBy = el('select', { attrs: { 'aria-label': 'colour cells by' } });
  const colourLabel = el('label', { text: 'Colour: ' }, [colourBy]);
  controls.append(colourLabel);
  const row = el('div', { className: 'hs-row' });
  body.append(row);
  const grid = new PlotSlot(ctx.plotly, row, 'logit-lens', 420);
  const picker = new LayerPicker(controls, 'Patch layer', () => void redraw());
  const patches = new PlotSlot(ctx.plotly, row, 'logit-lens-patches', 420);
  let data: LogitLensData | null = null;
  colourBy.addEventListener('change', () => void redraw());

  clickLayerPosition(ctx, grid, patches);

  function hoverText(d: LogitLensData, li: number, pi: number): string {
    const pos = d.positions[pi];
    const toks = d.topTokens[li]?.[pi] ?? [];
    const probs = d.topProbs[li]?.[pi] ?? [];
    const head = `layer ${d.layers[li]} · position ${pi} ${escapeHtml(JSON.stringify(pos.label))} (${pos.kind})`;
    if (toks.length === 0) return `${head}<br>not computed yet`;
    const lines = toks.map((t, k) => `${k + 1}. ${escapeHtml(JSON.stringify(t))} ${fmt(probs[k] ?? NaN)}`);
    const target = d.target ? `<br>p(${escapeHtml(JSON.stringify(d.target.token))}) = ${fmt(d.target.probs[li][pi])}` : '';
    return `${head}<br>${lines.join('<br>')}${target}<br><i>click to run this cell</i>`;
  }

  function values(d: LogitLensData): { z: number[][]; title: string } {
    if (d.target && colourBy.value === 'target') return { z: d.target.probs, title: `p(${truncate(d.target.token, 12)})` };
    return { z: d.layers.map((_, li) => d.positions.map((_, pi) => d.topProbs[li]?.[pi]?.[0] ?? NaN)), title: 'top-1 p' };
  }

  function syncColour(d: LogitLensData): void {
    const want = d.target ? ['top1', 'target'] : ['top1'];
    if (Array.from(colourBy.options).map((o) => o.value).join() !== want.join()) {
      const keep = colourBy.value;
      colourBy.replaceChildren(
        el('option', { text: 'top-1 probability', attrs: { value: 'top1' } }),
        ...(d.target ? [el('option', { text: `p(${d.target.token})`, attrs: { value: 'target' } })] : []),
      );
      if (want.includes(keep)) colourBy.value = keep;
    }
    colourLabel.hidden = !d.target;
  }

  async function redraw(): Promise<void> {
    const d = data;
    if (!d) return;
    syncColour(d);
    const { z, title } = values(d);
    const custom = d.layers.map((l, li) => d.positions.map((_, pi) => [l, pi, hoverText(d, li, pi)]));
    const small = d.positions.length <= 40 && d.layers.length <= 48;
    const spans = imageSpanShapes(d.positions);
    await grid.draw(
      [
        {
          type: 'heatmap', x: d.positions.map((_, i) => i), y: d.layers, z: z.map((r) => r.map((v) => (Number.isFinite(v) ? v : null))),
          customdata: custom, hovertemplate: '%{customdata[2]}<extra></extra>', colorscale: SEQUENTIAL, zmin: 0, zmax: 1,
          xgap: small ? 1 : 0, ygap: small ? 1 : 0,
          colorbar: { title: { text: escapeHtml(title), side: 'right' }, thickness: 12 },
          ...(small ? { text: d.layers.map((_, li) => d.positions.map((_, pi) => truncate(d.topTokens[li]?.[pi]?.[0] ?? '', 6))), texttemplate: '%{text}', textfont: { size: 9 } } : {}),
        },
      ],
      {
        xaxis: { title: { text: 'position' }, ...positionTicks(d.positions), tickangle: -45 },
        yaxis: { title: { text: 'layer' }, ...(d.layers.length <= 16 ? { tickvals: d.layers } : {}) },
        margin: { l: 60, r: 20, t: 40, b: 90 },
        ...spans,
      },
    );
    const img = d.image;
    patches.div.hidden = !img;
    picker.select.parentElement!.hidden = !img;
    if (!img) return;
    const filled = d.topTokens.filter((t) => t.length > 0).length;
    const li = picker.sync(d.layers, Math.max(0, filled - 1));
    const patchZ = img.positions.map((p) => z[li]?.[p] ?? NaN);
    await patches.draw(
      patchTraces(img, {
        values: patchZ,
        hover: img.positions.map((p) => hoverText(d, li, p)),
        custom: img.positions.map((p) => [d.layers[li], p]),
        labels: img.positions.map((p) => truncate(d.topTokens[li]?.[p]?.[0] ?? '', 5)),
        colorscale: SEQUENTIAL,
        zmin: 0,
        zmax: 1,
        colorbarTitle: escapeHtml(title),
      }),
      { ...patchLayout(img), title: { text: `layer ${d.layers[li]}: top-1 token per patch`, font: { size: 12 }, x: 0.02 } },
    );
  }

  return {
    async update(state: ViewState<'logit-lens'>) {
      data = state.data;
      await redraw();
    },
    plots: () => (data?.image ? [grid, patches] : [grid]).map((s) => ({ name: s.name, div: s.div })),
    dispose() {
      grid.dispose();
      patches.dispose();
    },
  };
};
