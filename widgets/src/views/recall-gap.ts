// recall-gap: factual accuracy with the entity named in text vs shown in the image, per entity type, with
// 95% confidence intervals, and the same numbers as a table; compared models side by side in each group.

import type { RecallGapData, RecallGapRow, ViewState } from '../../../src/report/views';
import type { Trace } from '../plotly-types';
import { clear, el } from '../dom';
import { COLORS, PlotSlot, drawnModels, escapeHtml, pct, seriesName, type DrawnModel } from './plot';
import type { RendererFactory } from './types';

export const recallGap: RendererFactory<'recall-gap'> = (body, ctx) => {
  const plot = new PlotSlot(ctx.plotly, body, 'recall-gap', 340);
  const note = el('div', { className: 'hs-note' });
  const table = el('table', { className: 'hs-table' });
  body.append(note, table);

  function rowsOf(d: RecallGapData): RecallGapRow[] {
    return d.overall ? [...d.rows, { ...d.overall, type: d.overall.type || 'all' }] : d.rows;
  }

  function bars(m: DrawnModel<RecallGapData>): Trace[] {
    const rows = rowsOf(m.data);
    const bar = (cond: 'text' | 'image'): Trace => {
      const acc = rows.map((r) => (cond === 'text' ? r.textAcc : r.imageAcc));
      const ci = rows.map((r) => (cond === 'text' ? r.textCI : r.imageCI));
      return {
        type: 'bar', name: seriesName(m, cond === 'text' ? 'entity named in text' : 'entity shown in image'), legendgroup: m.label ?? undefined,
        x: rows.map((r) => r.type), y: acc,
        // In a comparison the model keeps its colour and the image bars are hatched.
        marker: m.color === null ? { color: cond === 'text' ? COLORS.text : COLORS.image } : { color: m.color, ...(cond === 'image' ? { pattern: { shape: '/' } } : {}) },
        error_y: { type: 'data', symmetric: false, array: ci.map((c, i) => c[1] - acc[i]), arrayminus: ci.map((c, i) => acc[i] - c[0]), thickness: 1.2, width: 4 },
        customdata: rows.map((r, i) => [NaN, i, `${escapeHtml(seriesName(m, r.type))} · ${cond}<br>accuracy ${pct(acc[i])} (95% CI ${pct(ci[i][0])}–${pct(ci[i][1])})<br>n = ${r.n}, drop ${pct(r.textAcc - r.imageAcc)}${r.pValue !== null ? `, p = ${pValue(r.pValue)}` : ''}`]),
        hovertemplate: '%{customdata[2]}<extra></extra>',
      };
    };
    return [bar('text'), bar('image')];
  }

  function fillTable(models: DrawnModel<RecallGapData>[]): void {
    clear(table);
    const comparing = models.length > 1;
    const head = [...(comparing ? ['model'] : []), 'entity type', 'n', 'text acc [95% CI]', 'image acc [95% CI]', 'drop', 'p'];
    table.append(el('thead', {}, [el('tr', {}, head.map((h) => el('th', { text: h })))]));
    const tbody = el('tbody');
    for (const m of models) for (const r of rowsOf(m.data)) {
      const d = m.data;
      const tr = el('tr', { className: d.overall && r.type === (d.overall.type || 'all') ? 'hs-total' : '' }, [
        ...(comparing ? [el('td', { text: m.label ?? '' })] : []),
        el('td', { text: r.type }),
        el('td', { text: String(r.n) }),
        el('td', { text: `${pct(r.textAcc)} [${pct(r.textCI[0])}, ${pct(r.textCI[1])}]` }),
        el('td', { text: `${pct(r.imageAcc)} [${pct(r.imageCI[0])}, ${pct(r.imageCI[1])}]` }),
        el('td', { text: pct(r.textAcc - r.imageAcc) }),
        el('td', { text: r.pValue !== null ? pValue(r.pValue) : '–' }),
      ]);
      tbody.append(tr);
    }
    table.append(tbody);
  }

  return {
    async update(state: ViewState<'recall-gap'>) {
      const d = state.data;
      const comparing = state.compare.length > 0;
      const who = comparing ? `models ${[state.label, ...state.compare.map((c) => c.label)].join(', ')}` : d.model ? `model ${d.model}` : '';
      const bits = [who, d.matchRule ? `answer match: ${d.matchRule}` : '', 'identified entities only; bars show 95% CIs'];
      note.textContent = bits.filter(Boolean).join(' · ');
      const models = drawnModels(state);
      await plot.draw(models.flatMap(bars), {
        barmode: 'group',
        yaxis: { title: { text: 'factual accuracy' }, range: [0, 1], tickformat: '.0%' },
        xaxis: { title: { text: 'entity type' } },
        legend: { orientation: 'h', y: -0.25 },
        margin: { l: 60, r: 20, t: 20, b: 80 },
      });
      fillTable(models);
    },
    plots: () => [{ name: plot.name, div: plot.div }],
    dispose: () => plot.dispose(),
  };
};

function pValue(p: number): string {
  return p < 1e-3 ? p.toExponential(1) : p.toPrecision(2);
}
