// layer-switch: fraction of cross-patched runs naming the donor vs the target per layer, the switch layer
// marked, and a per-pair drill-down (which entity each single run named at each layer). Compared models are
// overlaid on the main plot, one colour each; the drill-down shows the state's own model.

import type { LayerSwitchData, ViewState } from '../../../src/report/views';
import type { Trace } from '../plotly-types';
import { el } from '../dom';
import { COLORS, PlotSlot, customNumber, drawnModels, escapeHtml, gaps, layerRange, markerLine, pct, pointData, seriesLine, seriesName } from './plot';
import type { RendererFactory } from './types';

export const layerSwitch: RendererFactory<'layer-switch'> = (body, ctx) => {
  const controls = el('div', { className: 'hs-controls' });
  const select = el('select', { attrs: { 'aria-label': 'drill down into one donor → target pair' } });
  controls.append(el('label', { text: 'Pair: ' }, [select]));
  body.append(controls);
  const main = new PlotSlot(ctx.plotly, body, 'layer-switch', 340);
  const drill = new PlotSlot(ctx.plotly, body, 'layer-switch-pair', 170);
  let data: LayerSwitchData | null = null;
  // One layer axis for both plots, so the pair's layers stand under the curves' (compared models' layers included).
  let xRange: [number, number] = [-0.5, 0.5];
  let pairKey = '';

  main.onClick((p) => {
    const layer = customNumber(p, 0);
    if (layer !== null) ctx.runCell({ layer }, `layer ${layer}`);
  });
  drill.onClick((p) => {
    const layer = customNumber(p, 0);
    const row = customNumber(p, 1);
    if (layer !== null && row !== null) ctx.runCell({ layer, row }, `layer ${layer}, pair ${row}`);
  });
  select.addEventListener('change', () => {
    if (data) void drawPair(data);
  });

  function syncPairs(d: LayerSwitchData): void {
    const key = d.pairs.map((p) => `${p.donor}\u0000${p.target}`).join('\u0001');
    if (key === pairKey) return;
    pairKey = key;
    const keep = select.value;
    select.replaceChildren(
      ...d.pairs.map((p, i) => el('option', { text: `${i}: ${p.donor} → ${p.target}`, attrs: { value: String(i) } })),
    );
    if (keep && Number(keep) < d.pairs.length) select.value = keep;
    controls.hidden = d.pairs.length === 0;
    drill.div.hidden = d.pairs.length === 0;
  }

  async function drawMain(state: ViewState<'layer-switch'>): Promise<void> {
    const d = state.data;
    const traces: Trace[] = [];
    const marks: ReturnType<typeof markerLine>[] = [];
    for (const m of drawnModels(state)) {
      const md = m.data;
      const hover = (i: number, who: string, f: number) =>
        `layer ${md.layers[i]}<br>${who}: ${pct(f)}${md.runs !== null ? ` of ${md.runs} runs` : ''}<br><i>click to run this layer</i>`;
      const curves = [
        { name: 'names donor', ys: md.donorFraction, color: COLORS.donor },
        { name: 'names target', ys: md.targetFraction, color: COLORS.target },
      ];
      curves.forEach((c, k) =>
        traces.push({
          type: 'scatter', mode: 'lines+markers', name: seriesName(m, c.name), x: md.layers, y: gaps(c.ys), legendgroup: m.label ?? undefined,
          line: seriesLine(m, k, { color: c.color }), marker: { size: 6 },
          customdata: md.layers.map((l, i) => pointData(m, l, k, hover(i, c.name, c.ys[i]))),
          hovertemplate: '%{customdata[2]}<extra></extra>',
        }),
      );
      if (md.switchLayer !== null) {
        const mark = markerLine(md.switchLayer, `${seriesName(m, 'switch')} ≈ L${md.switchLayer}`, m.color ?? COLORS.switch, 'paper', xRange);
        marks.push({ shape: mark.shape, annotation: { ...mark.annotation, yshift: 14 * m.index } });
      }
    }
    await main.draw(traces, {
      xaxis: { title: { text: 'patched layer (input of block l replaced at image positions)' }, dtick: d.layers.length > 30 ? 5 : 1, range: xRange },
      yaxis: { title: { text: 'fraction of runs' }, range: [-0.02, 1.05], tickformat: '.0%' },
      legend: { orientation: 'h', y: -0.25 },
      shapes: marks.map((m) => m.shape),
      annotations: marks.map((m) => m.annotation),
      margin: { l: 60, r: 20, t: 30 + 14 * state.compare.length, b: 80 },
    });
  }

  async function drawPair(d: LayerSwitchData): Promise<void> {
    if (d.pairs.length === 0) return;
    const index = Math.min(Number(select.value) || 0, d.pairs.length - 1);
    const pair = d.pairs[index];
    const rows: { name: string; hits: (boolean | null)[]; color: string }[] = [
      { name: `names donor (${pair.donor})`, hits: pair.namesDonor, color: COLORS.donor },
      { name: `names target (${pair.target})`, hits: pair.namesTarget, color: COLORS.target },
    ];
    const traces: Trace[] = rows.map((r, ri) => ({
      type: 'scatter', mode: 'markers', name: r.name, showlegend: false,
      x: d.layers, y: d.layers.map(() => ri),
      marker: {
        size: 13, symbol: r.hits.map((h) => (h === null ? 'circle-dot' : h ? 'circle' : 'circle-open')),
        color: r.hits.map((h) => (h === null ? '#ccc' : r.color)), line: { color: r.color, width: 1.5 },
      },
      customdata: d.layers.map((l, i) => [
        l,
        index,
        `layer ${l} · ${escapeHtml(pair.donor)} → ${escapeHtml(pair.target)}<br>${r.name}: ${r.hits[i] === null ? 'not run yet' : r.hits[i] ? 'yes' : 'no'}` +
          (pair.generations[i] ? `<br>“${escapeHtml(pair.generations[i] ?? '')}”` : '') + '<br><i>click to re-run</i>',
      ]),
      hovertemplate: '%{customdata[2]}<extra></extra>',
    }));
    const typeNote = pair.donorType || pair.targetType ? ` (${pair.donorType ?? '?'} → ${pair.targetType ?? '?'})` : '';
    await drill.draw(traces, {
      title: { text: `pair ${index}: donor ${escapeHtml(pair.donor)} → target ${escapeHtml(pair.target)}${escapeHtml(typeNote)}`, font: { size: 12 }, x: 0.01 },
      xaxis: { title: { text: 'patched layer' }, dtick: d.layers.length > 30 ? 5 : 1, range: xRange },
      yaxis: { tickvals: [0, 1], ticktext: ['donor', 'target'], range: [-0.6, 1.6], fixedrange: true },
      margin: { l: 60, r: 20, t: 30, b: 40 },
    });
  }

  return {
    async update(state: ViewState<'layer-switch'>) {
      data = state.data;
      syncPairs(state.data);
      xRange = layerRange(drawnModels(state));
      await drawMain(state);
      await drawPair(state.data);
    },
    plots: () => (data && data.pairs.length > 0 ? [main, drill] : [main]).map((s) => ({ name: s.name, div: s.div })),
    dispose() {
      main.dispose();
      drill.dispose();
    },
  };
};
