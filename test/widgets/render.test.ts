// Every view drawn in headless Chromium from saved widget state (html-manager, no kernel, no network), bad
// states shown as readable messages, streaming updates and the click → run-cell → cell-result round trip
// through a stand-in comm, and PNG/SVG export. One browser for the whole file.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { renderStaticPage } from '../../src/report/static-page';
import { browserSkip, ensureStaticBundle, launch, openPage, pixelStats, waitSettled, type Browser } from './browser';
import { allViewStates, attributionMapState, badViewStates, circuitMapState, comparedViewStates, knockoutMapState, layerSwitchState, logitLensState, probeAccuracyState, recoveryCurveState } from './fixtures';

const skip = browserSkip();
let b: Browser;
let shots: string;

before(async () => {
  if (skip) return;
  ensureStaticBundle();
  b = await launch();
  shots = path.join(b.tmp, 'screenshots');
  fs.mkdirSync(shots, { recursive: true });
});

after(async () => {
  await b?.close();
});

interface WidgetInfo {
  status: string;
  title: string;
  message: string | null;
  plots: { svgs: number; traces: number; heatmaps: number; images: number; points: number; width: number; height: number }[];
  tableRows: number;
  captions: string[];
  legend: string[];
  strokes: string[];
}

const INFO_JS = `Array.from(document.querySelectorAll('.hopscope-widget')).map((w) => ({
  status: w.dataset.hsStatus,
  title: w.querySelector('.hs-title').textContent,
  message: (() => { const m = w.querySelector('.hs-message'); return m && !m.hidden ? m.textContent : null; })(),
  plots: Array.from(w.querySelectorAll('.hs-plot')).filter((p) => !p.hidden).map((p) => ({
    svgs: p.querySelectorAll('svg.main-svg').length,
    traces: p.querySelectorAll('.main-svg .trace').length,
    heatmaps: Array.from(p.querySelectorAll('.heatmaplayer image')).filter((i) => Number(i.getAttribute('width')) > 0).length,
    images: p.querySelectorAll('.imagelayer image').length,
    points: p.querySelectorAll('.scatterlayer .point, .barlayer .point').length,
    width: p.getBoundingClientRect().width,
    height: p.getBoundingClientRect().height,
  })),
  tableRows: w.querySelectorAll('.hs-table tbody tr').length,
  captions: Array.from(w.querySelectorAll('.hs-panel-caption')).filter((c) => !c.hidden).map((c) => c.textContent),
  legend: Array.from(w.querySelectorAll('.legendtext')).map((t) => t.textContent),
  strokes: Array.from(new Set(Array.from(w.querySelectorAll('.scatterlayer .js-line')).map((l) => l.style.stroke))),
}))`;

async function widgetInfo(): Promise<WidgetInfo[]> {
  return (await b.page.evaluate(INFO_JS)) as WidgetInfo[];
}

test('every view renders from saved state, with charts drawn and no errors or network', { skip }, async (t) => {
  t.diagnostic(`screenshots: ${shots}`);
  const states = allViewStates();
  const html = renderStaticPage({
    title: 'All hopscope views',
    sections: states.map((s) => ({ html: `<h2>${s.view}</h2>`, widgetState: s })),
  });
  await openPage(b, html, 'all-views');
  const info = await widgetInfo();
  assert.equal(info.length, states.length);
  info.forEach((w, i) => {
    const kind = states[i].view;
    assert.equal(w.status, 'ready', `${kind}: status ${w.status}, message ${w.message}`);
    assert.equal(w.message, null, `${kind}: unexpected message ${w.message}`);
    assert.ok(w.plots.length > 0, `${kind}: no plot`);
    for (const p of w.plots) {
      assert.ok(p.svgs > 0 && p.traces + p.heatmaps > 0, `${kind}: plotly drew nothing (${JSON.stringify(p)})`);
      assert.ok(p.width > 200 && p.height > 100, `${kind}: plot has no size (${p.width}×${p.height})`);
    }
  });
  const byKind = Object.fromEntries(info.map((w, i) => [states[i].view, w]));
  assert.ok(byKind['layer-switch'].plots[0].points >= 2 * 25, 'layer-switch: one point per layer and series');
  assert.equal(byKind['layer-switch'].plots.length, 2, 'layer-switch: pair drill-down drawn');
  assert.ok(byKind['knockout-map'].plots[0].heatmaps >= 1, 'knockout-map: heat map image');
  assert.ok(byKind['logit-lens'].plots[0].heatmaps >= 1 && byKind['logit-lens'].plots[1].images === 1, 'logit-lens: grid and picture');
  assert.ok(byKind['attribution-map'].plots[1].images === 1 && byKind['attribution-map'].plots[1].heatmaps === 1, 'attribution-map: patch overlay on the picture');
  assert.equal(byKind['attribution-map'].plots.length, 3, 'attribution-map: the cosine map beside the scores');
  assert.equal(byKind['attribution-map'].plots[2].heatmaps, 1, 'attribution-map: the cosine map drawn');
  assert.equal(byKind['recall-gap'].plots[0].points, 10, 'recall-gap: 5 groups × 2 bars');
  assert.equal(byKind['recall-gap'].tableRows, 5);
  assert.ok(byKind['freeze-curve'].plots[0].points >= 20);
  // The probe's resolution layers carry their bootstrap intervals: in the label, and as a band where it is wider than a layer.
  const probe = (await b.page.evaluate(`(() => { const p = document.querySelectorAll('.hopscope-widget')[${states.findIndex((s) => s.view === 'probe-accuracy')}].querySelector('.hs-plot');
    return { texts: Array.from(p.querySelectorAll('.annotation-text')).map((t) => t.textContent), bands: p._fullLayout.shapes.filter((s) => s.type === 'rect').map((s) => [s.x0, s.x1]) }; })()`)) as { texts: string[]; bands: number[][] };
  assert.ok(probe.texts.includes('image resolved L20 (95 % CI L19–L21)') && probe.texts.includes('text resolved L7 (95 % CI L7)'), JSON.stringify(probe.texts));
  assert.deepEqual(probe.bands, [[19, 21]]);

  const widgets = b.page.locator('.hopscope-widget');
  for (let i = 0; i < states.length; i++) {
    const file = path.join(shots, `${states[i].view}.png`);
    await widgets.nth(i).screenshot({ path: file });
    const px = pixelStats(fs.readFileSync(file));
    assert.ok(px.colours > 30 && px.inked > 0.05, `${states[i].view}: screenshot looks empty (${JSON.stringify(px)})`);
  }
  assert.deepEqual(b.errors, []);
  assert.deepEqual(b.blocked, []);
});

test('compared models: curves and bars share one plot, one colour per model; heat maps get one panel per model', { skip }, async () => {
  const single = allViewStates();
  const states = comparedViewStates();
  await openPage(b, renderStaticPage({ title: 'Compared views', sections: [...single, ...states].map((s) => ({ widgetState: s })) }), 'compared-views');
  const all = await widgetInfo();
  const [one, two] = [all.slice(0, single.length), all.slice(single.length)];
  const overlaid = ['layer-switch', 'freeze-curve', 'probe-accuracy', 'recall-gap', 'recovery-curve'];
  two.forEach((w, i) => {
    const kind = states[i].view;
    assert.equal(w.status, 'ready', `${kind}: status ${w.status}, message ${w.message}`);
    if (overlaid.includes(kind)) {
      assert.equal(w.plots.length, one[i].plots.length, `${kind}: the comparison is drawn on the same plots as one model`);
      // Compared freeze curves keep their per-type curves in the legend only (drawn on a click).
      const perType = kind === 'freeze-curve' ? (single[i].data as { series: unknown[] }).series.length : 0;
      assert.equal(w.plots[0].traces, 2 * (one[i].plots[0].traces - perType), `${kind}: each model's traces on the first plot`);
      if (perType) assert.equal(w.legend.length, one[i].legend.length * 2, `${kind}: the per-type curves stay in the legend`);
      assert.ok(w.legend.some((t) => t.startsWith('late: ')) && w.legend.some((t) => t.startsWith('early: ')), `${kind}: legend names both models (${w.legend})`);
      assert.deepEqual(w.captions, []);
    } else {
      assert.equal(w.plots.length, 2 * one[i].plots.length, `${kind}: one panel per model`);
      assert.deepEqual(w.captions, ['late', 'early'], `${kind}: each panel named by its model`);
    }
  });
  // One model keeps its modality colours; two models take one colour each (late orange, early green).
  const probe = states.findIndex((s) => s.view === 'probe-accuracy');
  assert.deepEqual(two[probe].strokes.sort(), ['rgb(194, 65, 12)', 'rgb(21, 128, 61)']);
  assert.ok(one[probe].strokes.length >= 2 && !one[probe].strokes.includes('rgb(194, 65, 12)'));
  assert.equal(two[states.findIndex((s) => s.view === 'recall-gap')].tableRows, 10, 'recall-gap: both models in the table');
  assert.deepEqual(b.errors, []);
});

/** The first widget's score map: its title and its colour bar's title. */
async function mapTitles(): Promise<{ title: string | null; bar: string | null }> {
  return (await b.page.evaluate(`(() => { const p = document.querySelector('.hopscope-widget .hs-plot');
    const t = (sel) => { const e = p.querySelector(sel); return e ? e.textContent : null; };
    return { title: t('.gtitle'), bar: t('.cbtitle text') }; })()`)) as { title: string | null; bar: string | null };
}

test('a site map without a picture (the circuit view), one model and two: no patch-layer picker, sites named as sites, no click-to-patch, the cosine map beside the scores inside the widget', { skip }, async () => {
  const base = circuitMapState();
  const states = [base, { ...base, title: 'circuit: late vs early', label: 'late', compare: [{ label: 'early', data: base.data }] }];
  // One page each: a later widget on the same page resizes the earlier one's plots and would hide a misdrawn width.
  for (const [i, state] of states.entries()) {
    await openPage(b, renderStaticPage({ title: 'Site map', sections: [{ widgetState: state }] }), `site-map-${i}`);
    const [w] = await widgetInfo();
    assert.equal(w.status, 'ready', String(w.message));
    assert.equal(w.plots.length, 2 * (i + 1), 'scores and cosines per model, no picture');
    assert.ok(w.plots.every((p) => p.heatmaps === 1), JSON.stringify(w.plots));
    const layout = (await b.page.evaluate(`(() => { const w = document.querySelector('.hopscope-widget'); return {
      pickers: Array.from(w.querySelectorAll('.hs-controls label')).filter((l) => getComputedStyle(l).display !== 'none').length,
      plots: Array.from(w.querySelectorAll('.hs-plot')).filter((p) => !p.hidden).map((p) => ({ right: p.getBoundingClientRect().right, svg: p.querySelector('svg.main-svg').getBoundingClientRect().right })),
    }; })()`)) as { pickers: number; plots: { right: number; svg: number }[] };
    assert.equal(layout.pickers, 0, 'a patch-layer picker with no picture to patch');
    for (const p of layout.plots) assert.ok(p.svg <= p.right + 1, `a plot drawn wider than its place (${JSON.stringify(p)})`);
    // A column is a site (run · component · group): the axis and the band say so, not "position(s)".
    const texts = (await b.page.evaluate(`Array.from(document.querySelector('.hopscope-widget .hs-plot').querySelectorAll('.xtitle, .annotation-text')).map((t) => t.textContent)`)) as string[];
    assert.ok(texts.includes('site'), JSON.stringify(texts));
    assert.ok(texts.includes('image run (8)'), JSON.stringify(texts));
    assert.ok(!texts.some((t) => /position/.test(t)), JSON.stringify(texts));
    assert.deepEqual(await mapTitles(), { title: 'attribution estimate (×: re-measured by exact patching)', bar: 'logit diff' });
  }
  // Every cell measured by exact patching (the circuit with every site re-measured): the title says so, not "estimate".
  const exact = { ...base, data: { ...(base.data as object), measured: 'exact', confirmed: [] } };
  await openPage(b, renderStaticPage({ title: 'Site map, exact', sections: [{ widgetState: exact }] }), 'site-map-exact');
  const [we] = await widgetInfo();
  assert.equal(we.status, 'ready', String(we.message));
  assert.deepEqual(await mapTitles(), { title: 'exact patching, every cell measured', bar: 'logit diff' });
  // A site sums a group of positions: a click on one runs nothing (it used to send its column index as a position).
  await clickHeatmapCentre();
  await b.page.waitForTimeout(300);
  assert.equal(await b.page.locator('.hs-answer').first().isVisible(), false, 'a click on a site ran a cell');
  assert.deepEqual(b.errors, []);
});

test("probe-accuracy with the peak rule: the axis names the rule, and no accuracy line claims to be the threshold", { skip }, async () => {
  const base = probeAccuracyState();
  const state = { ...base, data: { ...(base.data as object), threshold: 0.9, thresholdOf: 'peak' } };
  await openPage(b, renderStaticPage({ title: 'Peak rule', sections: [{ widgetState: state }] }), 'probe-peak');
  const [w] = await widgetInfo();
  assert.equal(w.status, 'ready', String(w.message));
  const texts = (await b.page.evaluate(`Array.from(document.querySelector('.hopscope-widget .hs-plot').querySelectorAll('.xtitle, .annotation-text')).map((t) => t.textContent)`)) as string[];
  assert.ok(texts.includes("layer (resolved: the first at 90% of its curve's best)"), JSON.stringify(texts));
  assert.ok(!texts.some((t) => /^threshold/.test(t)), JSON.stringify(texts));
  assert.deepEqual(b.errors, []);
});

test('per-layer charts: the axis holds the layers, and resolution labels at either end stay inside the figure', { skip }, async () => {
  // Eight layers, the text resolved at layer 0 and the image at the last: centred there, their labels hung off both
  // edges, and plotly stretched the axis to fit them (out to layer -1).
  const layers = [0, 1, 2, 3, 4, 5, 6, 7];
  const data = { ...(probeAccuracyState().data as object), layers, image: [0.1, 0.1, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9], text: layers.map(() => 0.95), transfer: undefined, resolutionCI: undefined };
  const state = { ...probeAccuracyState(), label: 'late', data, compare: [{ label: 'early', data }] };
  await openPage(b, renderStaticPage({ title: 'Layer axis', sections: [{ widgetState: state }] }), 'layer-axis');
  const [w] = await widgetInfo();
  assert.equal(w.status, 'ready', String(w.message));
  const got = (await b.page.evaluate(`(() => { const p = document.querySelector('.hopscope-widget .hs-plot'); const svg = p.querySelector('svg.main-svg').getBoundingClientRect();
    return { range: p._fullLayout.xaxis.range, svg: [svg.left, svg.right], labels: Array.from(p.querySelectorAll('.annotation')).map((a) => { const r = a.getBoundingClientRect(); return { text: a.textContent, left: r.left, right: r.right }; }) }; })()`)) as { range: number[]; svg: number[]; labels: { text: string; left: number; right: number }[] };
  assert.deepEqual(got.range, [-0.5, 7.5]);
  const ends = got.labels.filter((l) => /resolved L[07]$/.test(l.text));
  assert.equal(ends.length, 4, JSON.stringify(got.labels));
  for (const l of ends) assert.ok(l.left >= got.svg[0] && l.right <= got.svg[1], `${l.text} drawn outside the figure (${JSON.stringify(l)} in ${got.svg})`);
  // The layer switch's pair drill-down shares the curves' layer axis: its layers stand under theirs.
  const sw = layerSwitchState();
  await openPage(b, renderStaticPage({ title: 'Switch axis', sections: [{ widgetState: sw }] }), 'switch-axis');
  const ranges = (await b.page.evaluate(`Array.from(document.querySelectorAll('.hopscope-widget .hs-plot')).map((p) => p._fullLayout.xaxis.range)`)) as number[][];
  const layersOf = (sw.data as { layers: number[] }).layers;
  assert.deepEqual(ranges, [0, 1].map(() => [Math.min(...layersOf) - 0.5, Math.max(...layersOf) + 0.5]));
  assert.deepEqual(b.errors, []);
});

test('side-by-side columns with wide summary tables scroll each in its own column, never over the other', { skip }, async () => {
  // hopscope demo puts each model's summary (a one-row table of a dozen scalars) in its own column; with the
  // columns free to shrink, the first table ran under the second one (the recall gap's, session 31).
  const wide = Object.fromEntries(Array.from({ length: 14 }, (_, i) => [`someLongSummaryField${i}`, 0.123456 * i]));
  const { htmlSummary } = await import('../../src/report/tables');
  await openPage(b, renderStaticPage({ title: 'Columns', sections: [{ html: '<h2>two models</h2>', columns: [{ html: htmlSummary(wide) }, { html: htmlSummary(wide) }] }] }), 'wide-columns');
  // What is drawn just inside the second column, level with the first column's table, belongs to the second column
  // (or to no column): the first table is clipped at its column's edge and scrolls there.
  const got = (await b.page.evaluate(`(() => { const cols = Array.from(document.querySelectorAll('.hs-col')); const [a, c] = cols.map((x) => x.getBoundingClientRect());
    const t = cols[0].querySelector('table').getBoundingClientRect(); const hit = document.elementFromPoint(c.left + 4, t.top + t.height / 2);
    return { n: cols.length, gap: [a.right, c.left], tableRight: t.right, hitColumn: hit ? cols.indexOf(hit.closest('.hs-col')) : -1, scrolls: cols.map((x) => x.scrollWidth > x.clientWidth && getComputedStyle(x).overflowX === 'auto') }; })()`)) as { n: number; gap: number[]; tableRight: number; hitColumn: number; scrolls: boolean[] };
  assert.equal(got.n, 2);
  assert.ok(got.tableRight > got.gap[1], `the test needs a table wider than its column: ${JSON.stringify(got)}`);
  assert.notEqual(got.hitColumn, 0, `the first column's table is drawn over the second column: ${JSON.stringify(got)}`);
  assert.deepEqual(got.scrolls, [true, true], JSON.stringify(got));
  assert.deepEqual(b.errors, []);
});

test('probe-accuracy of text prompts only: no image series in the legend, nor in the plot', { skip }, async () => {
  // Lab 1's `%probe --modality text` listed "image prompt" in the legend with nothing drawn.
  const base = probeAccuracyState();
  const data = { ...(base.data as object), image: null, transfer: undefined, resolutionCI: undefined };
  await openPage(b, renderStaticPage({ title: 'Text probe', sections: [{ widgetState: { ...base, data } }] }), 'text-probe');
  const [w] = await widgetInfo();
  assert.equal(w.status, 'ready', String(w.message));
  assert.ok(!w.legend.includes('image prompt'), JSON.stringify(w.legend));
  assert.equal(w.plots[0].traces, 1, 'one curve: the text prompts');
  assert.deepEqual(b.errors, []);
});

test('attribution-map: a metric naming its tokens in quotes is drawn with its quotes, not entities, and the picture\'s title fits it', { skip }, async () => {
  const base = attributionMapState();
  const metric = 'logit[54 "Destin"] - logit[61 "Drazek"]';
  await openPage(b, renderStaticPage({ title: 'Quoted metric', sections: [{ widgetState: { ...base, data: { ...(base.data as object), metric } } }] }), 'quoted-metric');
  const [w] = await widgetInfo();
  assert.equal(w.status, 'ready', String(w.message));
  const texts = (await b.page.evaluate(`Array.from(document.querySelectorAll('.hopscope-widget svg text')).map((t) => t.textContent)`)) as string[];
  assert.ok(!texts.some((t) => /&quot;|&#34;/.test(t)), JSON.stringify(texts.filter((t) => /&/.test(t))));
  assert.ok(texts.includes(metric), "the scores' colour bar names the metric");
  assert.ok(texts.some((t) => t.startsWith(`${metric} @ L`)), "the picture's colour bar names the metric and layer");
  const title = (await b.page.evaluate(`(() => { const p = document.querySelectorAll('.hopscope-widget .hs-plot')[1]; const t = p.querySelector('.gtitle').getBoundingClientRect(); const s = p.querySelector('svg.main-svg').getBoundingClientRect(); return { text: p.querySelector('.gtitle').textContent, right: t.right, svg: s.right }; })()`)) as { text: string; right: number; svg: number };
  assert.match(title.text, /^layer \d+: attribution per patch$/);
  assert.ok(title.right <= title.svg, JSON.stringify(title));
  assert.deepEqual(b.errors, []);
});

test('recovery-curve: baselines a few points apart keep their labels apart', { skip }, async () => {
  // The early teaching model's text and image baselines (100 % and 96.9 %) wrote their labels over each other.
  const base = recoveryCurveState();
  const data = { ...(base.data as object), textAcc: 1, imageAcc: 0.969, cotAcc: 0.95 };
  const state = { ...base, label: 'late', data, compare: [{ label: 'early', data }] };
  await openPage(b, renderStaticPage({ title: 'Recovery labels', sections: [{ widgetState: state }] }), 'recovery-labels');
  const boxes = (await b.page.evaluate(`Array.from(document.querySelector('.hopscope-widget .hs-plot').querySelectorAll('.annotation')).map((a) => { const r = a.querySelector('.annotation-text').getBoundingClientRect(); return { text: a.textContent, top: r.top, bottom: r.bottom, left: r.left, right: r.right }; })`)) as { text: string; top: number; bottom: number; left: number; right: number }[];
  assert.equal(boxes.length, 6, JSON.stringify(boxes));
  for (const [i, p] of boxes.entries())
    for (const q of boxes.slice(i + 1)) {
      const overlap = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top) > 1 && Math.min(p.right, q.right) - Math.max(p.left, q.left) > 1;
      assert.ok(!overlap, `"${p.text}" and "${q.text}" overlap (${JSON.stringify([p, q])})`);
    }
  assert.deepEqual(b.errors, []);
});

test('bad or missing state fields show a readable message, never a blank cell or a stack trace', { skip }, async () => {
  const cases = badViewStates();
  const html = renderStaticPage({
    title: 'Bad states',
    sections: [
      ...cases.map((c) => ({ widgetState: c.state })),
      // A view tag whose model is not in the saved state.
      { widgetState: { version_major: 2, version_minor: 0, state: {} }, viewId: 'model-gone' },
    ],
  });
  await openPage(b, html, 'bad-states');
  const missing = (await b.page.evaluate(
    `Array.from(document.querySelectorAll('.hs-static-widget[data-hs-status="invalid"]')).map((e) => e.textContent)`,
  )) as string[];
  assert.equal(missing.length, 1);
  assert.match(missing[0], /state was not saved with the page \(model model-gone\)/);
  const info = await widgetInfo();
  assert.equal(info.length, cases.length);
  info.forEach((w, i) => {
    assert.ok(w.status === 'invalid' || w.status === 'error', `${cases[i].state.title}: status ${w.status}`);
    assert.ok(w.message, `${cases[i].state.title}: no message shown`);
    assert.match(w.message, cases[i].expect);
    assert.doesNotMatch(w.message, /\n\s+at |TypeError|undefined is not/, 'no stack traces or raw JS errors');
    assert.equal(w.plots.filter((p) => p.svgs > 0).length, 0, 'no half-drawn chart');
  });
  await b.page.locator('.hopscope-widget').nth(1).screenshot({ path: path.join(shots, 'bad-state.png') });
  assert.ok(pixelStats(fs.readFileSync(path.join(shots, 'bad-state.png'))).inked > 0.02);
  assert.deepEqual(b.errors, []);
});

test('a click on a saved (kernel-less) view explains that no kernel is connected', { skip }, async () => {
  const html = renderStaticPage({ title: 'Static click', sections: [{ widgetState: knockoutMapState() }] });
  await openPage(b, html, 'static-click');
  await clickHeatmapCentre();
  const answer = b.page.locator('.hs-answer');
  await answer.waitFor({ state: 'visible' });
  assert.match((await answer.textContent()) ?? '', /No kernel is connected/);
});

test('PNG and SVG export download the drawn chart', { skip }, async () => {
  // The page from the previous test (one knockout map) is still open.
  for (const format of ['svg', 'png'] as const) {
    const [download] = await Promise.all([b.page.waitForEvent('download'), b.page.click(`.hs-export-${format}`)]);
    const file = path.join(shots, `export.${format}`);
    await download.saveAs(file);
    const bytes = fs.readFileSync(file);
    if (format === 'svg') {
      const text = bytes.toString('utf8');
      assert.match(text, /^<svg[\s\S]*<\/svg>$/);
      assert.match(text, /heatmaplayer|<image/, 'the heat map is in the SVG');
    } else {
      assert.equal(bytes.subarray(1, 4).toString('ascii'), 'PNG');
      const px = pixelStats(bytes);
      assert.ok(px.colours > 30 && px.inked > 0.1, `exported PNG looks empty (${JSON.stringify(px)})`);
    }
    assert.match(download.suggestedFilename(), new RegExp(`^attention-knockout.*knockout-map\\.${format}$`));
  }
});

test('a click on a layer x position grid (logit lens, attribution map) asks for that cell', { skip }, async () => {
  for (const state of [logitLensState(), attributionMapState()]) {
    await openPage(b, renderStaticPage({ title: 'Grid click', sections: [{ widgetState: state }] }), `grid-click-${state.view}`);
    await clickHeatmapCentre();
    const answer = b.page.locator('.hs-answer');
    await answer.waitFor({ state: 'visible' });
    const text = (await answer.textContent()) ?? '';
    const m = /^layer (\d+), position (\d+)/.exec(text);
    assert.ok(m, `${state.view}: the cell's label heads the answer (${text})`);
    const data = state.data as { layers: number[]; positions: unknown[] };
    assert.ok(data.layers.includes(Number(m[1])) && Number(m[2]) < data.positions.length, `${state.view}: a drawn cell (${m[0]})`);
  }
  assert.deepEqual(b.errors, []);
});

async function clickHeatmapCentre(): Promise<void> {
  const box = await b.page.locator('.heatmaplayer image').first().boundingBox();
  assert.ok(box, 'heat map drawn');
  // Plotly registers a click from a hover followed by mouse down/up at the same spot.
  const x = box.x + box.width * 0.42;
  const y = box.y + box.height * 0.2;
  await b.page.mouse.move(x, y);
  await b.page.mouse.move(x + 1, y);
  await b.page.mouse.click(x + 1, y);
}

test('live model: streamed updates with binary buffers redraw in place; a click sends run-cell and shows the answer', { skip }, async () => {
  const html = renderStaticPage({ title: 'Live', sections: [{ html: '<div id="live"></div>' }] });
  await openPage(b, html, 'live');
  // A stand-in comm: what the kernel would receive is recorded; what it sends is injected via `deliver`.
  await b.page.evaluate(`(async () => {
    const { HTMLManager, widgets } = window.hopscopeStatic;
    const manager = new HTMLManager({ loader: async () => widgets });
    const sent = [];
    const comm = {
      comm_id: 'live-1', target_name: 'jupyter.widget',
      on_msg(cb) { this.handler = cb; }, on_close() {}, close() {},
      send(data) { sent.push(JSON.parse(JSON.stringify(data))); return 'msg-' + sent.length; },
    };
    const model = await manager.new_model(
      { model_name: 'HopscopeViewModel', model_module: 'hopscope-widgets', model_module_version: '^0.1.0', model_id: 'live-1', comm },
      { _model_name: 'HopscopeViewModel', _model_module: 'hopscope-widgets', _model_module_version: '^0.1.0',
        _view_name: 'HopscopeView', _view_module: 'hopscope-widgets', _view_module_version: '^0.1.0',
        view: 'knockout-map', title: 'Streaming knockout', data: {}, progress: { done: 0, total: 6 }, error: null });
    const view = await manager.create_view(model);
    await manager.display_view(view, document.getElementById('live'));
    window.live = { model, comm, sent, deliver: (data, buffers) => comm.handler({ content: { data }, buffers: buffers || [] }) };
  })()`);
  await waitSettled(b.page);
  const status = () => b.page.evaluate(`document.querySelector('#live .hopscope-widget').dataset.hsStatus`);
  assert.equal(await status(), 'waiting');

  // Six kernel updates in quick succession, each with one more column, relChange as a float32 buffer.
  await b.page.evaluate(`(() => {
    const layers = [4, 5, 6, 7, 8, 9];
    const edges = ['image → last', 'last → last'];
    for (let done = 1; done <= 6; done++) {
      const values = new Float32Array(edges.length * done);
      for (let e = 0; e < edges.length; e++) for (let c = 0; c < done; c++) values[e * done + c] = -0.1 * (c + 1) * (e + 1);
      window.live.deliver({
        method: 'update', buffer_paths: [['data', 'relChange', 'buffer']],
        state: { data: { layers, edgeSets: edges, relChange: { dtype: 'float32', shape: [edges.length, done] }, window: 9 }, progress: { done, total: 6 } },
      }, [new DataView(values.buffer)]);
    }
  })()`);
  await b.page.waitForFunction(`document.querySelector('#live .hs-progress-text').textContent === 'done (6)'`);
  await waitSettled(b.page);
  const drawn = (await b.page.evaluate(`(() => {
    const w = document.querySelector('#live .hopscope-widget');
    const gd = w.querySelector('.hs-plot');
    return { status: w.dataset.hsStatus, draws: Number(w.dataset.hsDraws), z: gd.data[0].z };
  })()`)) as { status: string; draws: number; z: (number | null)[][] };
  assert.equal(drawn.status, 'ready');
  assert.ok(drawn.draws >= 1 && drawn.draws <= 6, `redraws are coalesced (${drawn.draws} draws for 6 updates)`);
  assert.equal(drawn.z[1][5]?.toFixed(2), (-1.2).toFixed(2), 'the last update is the one drawn');

  await clickHeatmapCentre();
  await b.page.waitForFunction('window.live.sent.length > 0');
  const sent = (await b.page.evaluate('window.live.sent')) as { method: string; content: Record<string, unknown> }[];
  assert.equal(sent[0].method, 'custom');
  assert.equal(sent[0].content.type, 'run-cell');
  assert.equal(sent[0].content.view, 'knockout-map');
  assert.ok([4, 5, 6, 7, 8, 9].includes(sent[0].content.layer as number), `layer ${sent[0].content.layer}`);
  assert.ok([0, 1].includes(sent[0].content.row as number), `row ${sent[0].content.row}`);
  assert.match((await b.page.locator('#live .hs-answer').textContent()) ?? '', /running/);

  await b.page.evaluate(`window.live.deliver({ method: 'custom', content: {
    type: 'cell-result', request: window.live.sent[0].content, answer: 'p(answer) fell from 0.41 to 0.12 (Δp/p = −71%)',
    details: { generation: 'The tower is in Rome.' } } })`);
  await b.page.waitForFunction(`document.querySelector('#live .hs-answer').textContent.includes('−71%')`);
  const answer = (await b.page.locator('#live .hs-answer').textContent()) ?? '';
  assert.match(answer, /layer \d+, row \d/);

  // A kernel error arriving later is shown above the (still drawn) chart.
  await b.page.evaluate(`window.live.deliver({ method: 'update', state: { error: 'sweep interrupted: out of memory at layer 9' }, buffer_paths: [] })`);
  await b.page.waitForFunction(`(() => { const m = document.querySelector('#live .hs-message'); return m && !m.hidden && m.textContent.includes('out of memory'); })()`);
  await b.page.locator('#live .hopscope-widget').screenshot({ path: path.join(shots, 'live.png') });
  assert.ok(pixelStats(fs.readFileSync(path.join(shots, 'live.png'))).colours > 20);
  assert.deepEqual(b.errors, []);
  assert.deepEqual(b.blocked, []);
});
