// attribution-map: attribution-patching score per (layer, position) as a signed heat map, cells confirmed by
// exact patching marked (or, where every cell was measured, the exact effects, titled as such), a per-patch score
// drawn over the picture, and, where the data has one, a second map of cosines on a fixed [-1, 1] scale (the
// circuit experiment's reuse).

import { attributionMapTitle, type AttributionMapData, type ViewState } from '../../../src/report/views';
import type { Trace } from '../plotly-types';
import { el } from '../dom';
import { DIVERGING, PlotSlot, clickLayerPosition, escapeHtml, fmt, maxAbs } from './plot';
import { patchLayout, patchTraces } from './patches';
import { LayerPicker, imageSpanShapes, positionTicks } from './spans';
import type { RendererFactory } from './types';

/** Columns are sites (the circuit's run · component · group), not token positions. */
const sites = (d: AttributionMapData): boolean => d.columns === 'site';
/**
 * Tick labels: a site's name ("VLM·image mlp entity-last") is long and its column narrow (24 in a half-width
 * plot), so site labels stand upright in a smaller font, one column apart; token positions keep the slant.
 */
const siteTicks = (site: boolean) => (site ? { tickangle: -90, tickfont: { size: 9 } } : { tickangle: -45 });
/** The scores are effects measured by exact patching at every cell, not attribution's estimates. */
const measured = (d: AttributionMapData): boolean => d.measured === 'exact';

export const attributionMap: RendererFactory<'attribution-map'> = (body, ctx) => {
  const controls = el('div', { className: 'hs-controls' });
  body.append(controls);
  const row = el('div', { className: 'hs-row' });
  body.append(row);
  const grid = new PlotSlot(ctx.plotly, row, 'attribution-map', 420);
  const picker = new LayerPicker(controls, 'Patch layer', () => void redraw());
  const patches = new PlotSlot(ctx.plotly, row, 'attribution-patches', 420);
  const similarity = new PlotSlot(ctx.plotly, row, 'attribution-similarity', 420);
  let data: AttributionMapData | null = null;
  // The largest |score| of every panel of a comparison (the stacked panels pass the others as `compare`): one scale.
  let sharedBound = 0;

  clickLayerPosition(ctx, grid, patches);

  function hover(d: AttributionMapData, li: number, pi: number): string {
    const pos = d.positions[pi];
    const v = d.scores[li]?.[pi] ?? NaN;
    const exact = d.confirmed.find((c) => c.layer === d.layers[li] && c.position === pi);
    const column = sites(d) ? escapeHtml(pos.label) : `position ${pi} ${escapeHtml(JSON.stringify(pos.label))} (${pos.kind})`;
    return (
      `layer ${d.layers[li]} · ${column}<br>` +
      `${measured(d) ? 'exact patching, ' : ''}${escapeHtml(d.metric ?? 'score')}${measured(d) ? '' : ' estimate'}: ${Number.isFinite(v) ? fmt(v, 4) : 'not computed yet'}` +
      (exact ? `<br>exact patching: ${fmt(exact.exact, 4)}` : '') +
      // A site sums a run's group of positions: there is no one cell to patch (the circuit patches its top sites).
      (sites(d) ? '' : '<br><i>click to patch this cell exactly</i>')
    );
  }

  /** The layer whose image positions carry the most attribution: a sensible first overlay. */
  function strongestLayer(d: AttributionMapData): number {
    let best = 0;
    let bestSum = -1;
    d.scores.forEach((r, li) => {
      const s = (d.image?.positions ?? []).reduce((acc, p) => acc + (Number.isFinite(r[p]) ? Math.abs(r[p]) : 0), 0);
      if (s > bestSum) {
        bestSum = s;
        best = li;
      }
    });
    return best;
  }

  async function redraw(): Promise<void> {
    const d = data;
    if (!d) return;
    // Every panel's visibility before any is drawn: plotly sizes a plot to its div's width when drawn, and a panel
    // hidden afterwards would leave the others drawn at the widths of the old layout.
    patches.div.hidden = !d.image;
    similarity.div.hidden = !d.similarity;
    const bound = Math.max(1e-9, sharedBound, maxAbs(d.scores.flat()));
    const traces: Trace[] = [
      {
        type: 'heatmap', x: d.positions.map((_, i) => i), y: d.layers,
        z: d.scores.map((r) => r.map((v) => (Number.isFinite(v) ? v : null))),
        // No position for a site: the click handler then runs nothing.
        customdata: d.layers.map((l, li) => d.positions.map((_, pi) => [l, sites(d) ? NaN : pi, hover(d, li, pi)])),
        hovertemplate: '%{customdata[2]}<extra></extra>', colorscale: DIVERGING, zmid: 0, zmin: -bound, zmax: bound,
        colorbar: { title: { text: escapeHtml(d.metric ?? 'score'), side: 'right' }, thickness: 12 },
      },
    ];
    if (d.confirmed.length > 0) {
      traces.push({
        type: 'scatter', mode: 'markers', name: 'exact patching', showlegend: false,
        x: d.confirmed.map((c) => c.position), y: d.confirmed.map((c) => c.layer),
        marker: { symbol: 'x-thin-open', size: 9, color: '#111', line: { width: 2 } },
        customdata: d.confirmed.map((c) => {
          const li = d.layers.indexOf(c.layer);
          return [c.layer, sites(d) ? NaN : c.position, li >= 0 ? hover(d, li, c.position) : `exact ${fmt(c.exact, 4)}`];
        }),
        hovertemplate: '%{customdata[2]}<extra></extra>',
      });
    }
    await grid.draw(traces, {
      // What the cells are, so an estimate is never read as a measured effect.
      title: { text: escapeHtml(attributionMapTitle(d, true)), font: { size: 12 }, x: 0.02 },
      xaxis: { title: { text: sites(d) ? 'site' : 'position' }, ...positionTicks(d.positions), ...siteTicks(sites(d)), automargin: true },
      yaxis: { title: { text: 'layer' }, ...(d.layers.length <= 16 ? { tickvals: d.layers } : {}) },
      margin: { l: 60, r: 20, t: 40, b: 90 },
      ...imageSpanShapes(d.positions, sites(d) ? 'image run' : undefined),
    });
    await drawSimilarity(d);
    const img = d.image;
    picker.select.parentElement!.hidden = !img || d.patchScores !== null;
    if (!img) return;
    let values: number[];
    let title: string;
    let barTitle: string;
    let custom: [number, number][];
    let hovers: string[];
    if (d.patchScores) {
      values = d.patchScores;
      title = d.patchLabel ?? 'patch score';
      barTitle = title;
      custom = img.positions.map((p) => [NaN, p]);
      hovers = img.positions.map((p, i) => `patch ${i} (position ${p})<br>${escapeHtml(title)}: ${fmt(values[i], 4)}`);
    } else {
      const li = picker.sync(d.layers, strongestLayer(d));
      values = img.positions.map((p) => d.scores[li]?.[p] ?? NaN);
      // The colour bar names the metric; the title, short enough for the picture's width, the layer.
      title = `layer ${d.layers[li]}: ${measured(d) ? 'exact effect' : 'attribution'} per patch`;
      barTitle = `${d.metric ?? 'score'} @ L${d.layers[li]}`;
      custom = img.positions.map((p) => [d.layers[li], p]);
      hovers = img.positions.map((p) => hover(d, li, p));
    }
    const pb = Math.max(1e-9, maxAbs(values));
    const signed = values.some((v) => v < 0);
    await patches.draw(
      patchTraces(img, {
        values, hover: hovers, custom, labels: null,
        colorscale: signed ? DIVERGING : 'Hot',
        zmin: signed ? -pb : 0, zmax: pb, zmid: signed ? 0 : undefined,
        colorbarTitle: escapeHtml(barTitle),
      }),
      { ...patchLayout(img), title: { text: escapeHtml(title), font: { size: 12 }, x: 0.02 } },
    );
  }

  /** The cosine map on its own fixed scale: 1 is the same computation, 0 an unrelated one, whatever the scores. */
  async function drawSimilarity(d: AttributionMapData): Promise<void> {
    const sim = d.similarity;
    if (!sim) return;
    const hoverOf = (li: number, ci: number) => {
      const v = sim.scores[li]?.[ci] ?? NaN;
      return `layer ${d.layers[li]} · ${escapeHtml(sim.positions[ci].label)}<br>cosine: ${Number.isFinite(v) ? fmt(v, 3) : 'none (no pair gave one)'}`;
    };
    await similarity.draw(
      [
        {
          type: 'heatmap', x: sim.positions.map((_, i) => i), y: d.layers,
          z: sim.scores.map((r) => r.map((v) => (Number.isFinite(v) ? v : null))),
          customdata: d.layers.map((_, li) => sim.positions.map((__, ci) => hoverOf(li, ci))),
          hovertemplate: '%{customdata}<extra></extra>', colorscale: DIVERGING, zmid: 0, zmin: -1, zmax: 1,
          colorbar: { title: { text: 'cosine', side: 'right' }, thickness: 12 },
        },
      ],
      {
        title: { text: escapeHtml(sim.title), font: { size: 12 }, x: 0.02 },
        xaxis: { title: { text: 'site' }, ...positionTicks(sim.positions), ...siteTicks(true), automargin: true },
        yaxis: { title: { text: 'layer' }, ...(d.layers.length <= 16 ? { tickvals: d.layers } : {}) },
        margin: { l: 60, r: 20, t: 40, b: 90 },
      },
    );
  }

  return {
    async update(state: ViewState<'attribution-map'>) {
      data = state.data;
      sharedBound = Math.max(0, ...state.compare.map((c) => maxAbs(c.data.scores.flat())));
      await redraw();
    },
    plots: () => [grid, ...(data?.image ? [patches] : []), ...(data?.similarity ? [similarity] : [])].map((s) => ({ name: s.name, div: s.div })),
    dispose() {
      grid.dispose();
      patches.dispose();
      similarity.dispose();
    },
  };
};
