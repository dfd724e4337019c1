// Figures and timing from the kernel: every view kind drawn to SVG, PNG and PDF without a browser; a notebook run
// headless by nbconvert writes its figures (hs.saveFigure and a magic's --save over the real library) and
// times code with %time / %timeit.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { PNG } from 'pngjs';
import { figureSvg, saveFigure } from '../../kernel/figure/save';
import { lineChart, wrapWords } from '../../kernel/figure/svg';
import { parseTimeitLine } from '../../kernel/magics/timing';
import { allViewStates, comparedViewStates, knockoutMapState, recallGapState } from '../widgets/fixtures';
import { jupyterMissing, makeJupyterEnv, runPython, tempDir } from './jupyter-env';

const text = (v: string | string[]) => (Array.isArray(v) ? v.join('') : v);
const cell = (source: string) => ({ cell_type: 'code', metadata: {}, execution_count: null, outputs: [], source });

test('every view kind is drawn as SVG and as PNG (2× raster), with its title and data', async () => {
  const dir = tempDir('hopscope-fig-');
  for (const state of allViewStates()) {
    const s = state as { view: string; title: string };
    const svg = figureSvg(state);
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="640"/, s.view);
    assert.ok(svg.includes(s.title.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')), `${s.view}: title`);
    assert.match(svg, /<(path d="M|rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="#)/, `${s.view}: data drawn`);
    const file = await saveFigure(state, path.join(dir, `${s.view}.png`));
    const png = PNG.sync.read(fs.readFileSync(file));
    assert.equal(png.width, 1280, s.view);
    // Not blank: the raster holds more than the white background.
    const colours = new Set<number>();
    for (let i = 0; i < png.data.length; i += 4 * 97) colours.add((png.data[i] << 16) | (png.data[i + 1] << 8) | png.data[i + 2]);
    assert.ok(colours.size > 5, `${s.view}: ${colours.size} colours`);
  }
  // attribution-map's cosine map (circuit's reuse) is a second panel below the scores, on its own [-1, 1] scale.
  const attr = allViewStates().find((s) => s.view === 'attribution-map')!;
  const both = figureSvg(attr);
  const scoresOnly = figureSvg({ ...attr, data: { ...(attr.data as object), similarity: null } });
  const h = (doc: string) => Number(/height="([\d.]+)"/.exec(doc)![1]);
  assert.ok(h(both) > h(scoresOnly) && both.includes("reuse: cosine with the backbone's site"), 'a second panel, titled');
  assert.match(both, /VLM·image mlp entity-last, layer 1: [-\d.]+</, 'the cosine map drawn');
  assert.match(both, /VLM·image mlp entity-last, layer 0: n\/a</, 'null drawn blank');
  // The scores' panel says what its cells are: estimates (no × marks here to explain), or effects measured everywhere.
  assert.ok(both.includes(`${attr.title}: attribution estimate<`), 'estimates titled as such');
  const exact = figureSvg({ ...attr, data: { ...(attr.data as object), measured: 'exact', confirmed: [] } });
  assert.ok(exact.includes(`${attr.title}: exact patching, every cell measured`) && !exact.includes('attribution estimate'), 'measured effects titled as such');
  const svgFile = await saveFigure(recallGapState(), path.join(dir, 'sub', 'gap.svg'));
  assert.match(fs.readFileSync(svgFile, 'utf8'), /celebs.*landmarks/s);
});

test('compared models are drawn on one figure: curves and bars name each model in the legend, heat maps stack a panel per model', async () => {
  const dir = tempDir('hopscope-fig-cmp-');
  const heat = new Set(['knockout-map', 'logit-lens', 'attribution-map']);
  for (const state of comparedViewStates()) {
    const s = state as { view: string; title: string };
    const svg = figureSvg(state);
    const one = figureSvg({ ...state, label: null, compare: null });
    const height = (doc: string) => Number(/height="([\d.]+)"/.exec(doc)![1]);
    if (heat.has(s.view)) {
      assert.equal(height(svg), 2 * height(one), `${s.view}: two panels`);
      assert.ok(svg.includes(`${s.title}: late`) && svg.includes(`${s.title}: early`), `${s.view}: panels named by model`);
    } else {
      assert.equal(height(svg), height(one), `${s.view}: one chart`);
      assert.match(svg, />late: [^<]+</, `${s.view}: late in the legend`);
      assert.match(svg, />early: [^<]+</, `${s.view}: early in the legend`);
    }
    // sharp (librsvg) rasterises the nested panels.
    const png = PNG.sync.read(fs.readFileSync(await saveFigure(state, path.join(dir, `${s.view}.png`))));
    assert.equal(png.height, 2 * height(svg), `${s.view}: raster of the whole figure`);
  }
});

test('the probe figure marks each resolution layer, with its bootstrap interval', () => {
  const probe = allViewStates().find((s) => s.view === 'probe-accuracy')!;
  const svg = figureSvg(probe);
  assert.ok(svg.includes('>image resolved 20 (95 % CI 19–21)</text>'), 'image mark with its interval');
  assert.ok(svg.includes('>text resolved 7 (95 % CI 7)</text>'), 'text mark: every draw agrees');
  const without = figureSvg({ ...probe, data: { ...(probe.data as object), resolutionCI: undefined } });
  assert.ok(without.includes('>image resolved 20</text>'));
});

test("a compared model's long series names wrap in the legend instead of running off the figure", () => {
  assert.deepEqual(wrapWords('late: image, probe fit on text', 19), ['late: image, probe', 'fit on text']);
  assert.deepEqual(wrapWords('a-very-long-single-word-label here', 19), ['a-very-long-single-word-label', 'here']);
  assert.deepEqual(wrapWords('', 19), ['']);
  const names = ['late: image', 'late: image, probe fit on text', 'early: image, probe fit on text'];
  const svg = lineChart({ title: 't', xLabel: 'x', yLabel: 'y' }, [0, 1], names.map((name) => ({ name, y: [0, 1] })));
  const legend = [...svg.matchAll(/<text x="(\d+)" y="([\d.]+)">([^<]*)<\/text>/g)].filter((m) => Number(m[1]) === 640 - 150 + 30);
  assert.deepEqual(legend.map((m) => m[3]), ['late: image', 'late: image, probe', 'fit on text', 'early: image, probe', 'fit on text']);
  assert.ok(legend.every((m) => m[3].length <= 19));
  const ys = legend.map((m) => Number(m[2]));
  assert.ok(ys.every((y, i) => i === 0 || y > ys[i - 1]), `legend lines overlap: ${ys}`);
});

test("compared models' marks (two switch layers a layer apart) print their labels on separate lines", () => {
  const svg = lineChart({ title: 't', xLabel: 'x', yLabel: 'y' }, [0, 1, 2, 3], [{ name: 'a', y: [0, 0.5, 1, 1] }], [
    { at: 2, label: 'early: switch 2' },
    { at: 3, label: 'late: switch 3' },
  ]);
  const at = (label: string) => {
    const m = new RegExp(`<text x="([\\d.]+)" y="([\\d.]+)" fill="#555">${label}</text>`).exec(svg);
    assert.ok(m, `${label} is drawn`);
    return { x: Number(m[1]), y: Number(m[2]) };
  };
  const [early, late] = [at('early: switch 2'), at('late: switch 3')];
  assert.ok(late.x > early.x, 'each label beside its own line');
  assert.ok(Math.abs(late.y - early.y) >= 12, `labels a line apart (y ${early.y} and ${late.y})`);
});

test('compared heat maps share one colour scale: a model with half the effect is drawn paler, not rescaled', () => {
  const own = knockoutMapState();
  const d = own.data as { layers: number[]; edgeSets: string[]; relChange: { buffer: Float32Array } };
  const full = d.edgeSets.map((_, e) => d.layers.map((_, c) => d.relChange.buffer[e * d.layers.length + c]));
  const half = full.map((row) => row.map((v) => v / 2));
  const bound = Math.max(...full.flat().map(Math.abs));
  const svg = figureSvg({ ...own, data: { ...d, relChange: full }, label: 'late', compare: [{ label: 'early', data: { ...d, relChange: half } }] });
  // The scale's top label, once per panel: the larger model's bound in both.
  const tops = [...svg.matchAll(/<text x="\d+" y="\d+">([-\d.]+)<\/text><text x="\d+" y="\d+">([-\d.]+)<\/text><text[^>]*>rel\. change</g)].map((m) => Number(m[1]));
  assert.deepEqual(tops, [Math.round(bound * 100) / 100, Math.round(bound * 100) / 100]);
  const alone = figureSvg({ ...own, data: { ...d, relChange: half } });
  assert.match(alone, new RegExp(`>${Math.round((bound / 2) * 100) / 100}</text>`), 'alone, a model gets its own scale');
});

/** Poppler's pdftotext reads the PDFs back (scripts/test.sh installs poppler-utils for the full tier). */
const NO_PDFTOTEXT = spawnSync('pdftotext', ['-v']).error ? 'pdftotext not installed (apt-get install poppler-utils)' : false;
function pdfText(file: string): string {
  const r = spawnSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `pdftotext ${file}: ${r.stderr}`);
  return r.stdout;
}

test('every view kind is drawn as a one-page vector PDF with its text in embedded DejaVu Sans', async () => {
  const dir = tempDir('hopscope-pdf-');
  for (const state of allViewStates()) {
    const s = state as { view: string; title: string };
    const file = await saveFigure(state, path.join(dir, `${s.view}.pdf`));
    const pdf = fs.readFileSync(file);
    const raw = pdf.toString('latin1');
    assert.ok(raw.startsWith('%PDF-'), s.view);
    const svgHeight = /height="([\d.]+)"/.exec(figureSvg(state))![1];
    assert.match(raw, new RegExp(`/MediaBox \\[0 0 640 ${svgHeight}\\]`), `${s.view}: one page the SVG's size`);
    assert.equal(raw.match(/\/Type \/Page\b/g)?.length, 1, `${s.view}: one page`);
    assert.match(raw, /\/BaseFont \/[A-Z]{6}\+DejaVuSans\b/, `${s.view}: the font is embedded (a subset)`);
    assert.ok(!/\/Subtype \/Image/.test(raw), `${s.view}: vector, not a raster`);
    if (!NO_PDFTOTEXT) {
      const text = pdfText(file);
      // The title as text, non-Latin-1 characters included (the fixtures' titles have "?" and ":"; labels "≈").
      const words = s.title.split(/\s+/).filter((w) => w.length > 3).slice(0, 4);
      for (const w of words) assert.ok(text.includes(w), `${s.view}: "${w}" in the PDF's text:\n${text.slice(0, 400)}`);
    }
  }
  // The same figure gives the same bytes (no creation date, no random id).
  const a = await saveFigure(recallGapState(), path.join(dir, 'a.pdf'));
  const b = await saveFigure(recallGapState(), path.join(dir, 'b.pdf'));
  assert.ok(fs.readFileSync(a).equals(fs.readFileSync(b)), 'deterministic');
});

test('PDF text keeps characters beyond Latin-1 (≈, →)', { skip: NO_PDFTOTEXT || undefined }, async () => {
  const dir = tempDir('hopscope-pdf-');
  const state = { ...recallGapState(), title: 'switch ≈ L4 → naming' } as ReturnType<typeof recallGapState>;
  const text = pdfText(await saveFigure(state, path.join(dir, 'u.pdf')));
  assert.ok(text.includes('switch ≈ L4 → naming'), text);
});

test('recall-gap bars are as tall as the accuracies; a widget handle saves its current state', async () => {
  const svg = figureSvg({ state: recallGapState(), send() {} });
  const heights = [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)" fill="#1f77b4"><title>(\w+) text/g)].map((m) => [m[2], Number(m[1])]);
  assert.deepEqual(heights.map(([t]) => t), ['celebs', 'landmarks', 'paintings', 'brands', 'all']);
  // 0.52 and 0.37 on a 0..1 axis: the ratio of the bar heights.
  const h = Object.fromEntries(heights) as Record<string, number>;
  assert.ok(Math.abs(h.brands / h.celebs - 0.37 / 0.52) < 0.01, JSON.stringify(h));
});

test('saveFigure says what is wrong: format, a view without data yet, not a view', async () => {
  await assert.rejects(saveFigure(recallGapState(), 'fig.gif'), /unsupported format "\.gif"; use \.png, \.svg or \.pdf/);
  await assert.rejects(saveFigure({ view: 'layer-switch', title: 'x', data: {}, progress: { done: 1, total: 9 }, error: null }, 'f.svg'), /has no data yet \(running: 1\/9\)/);
  await assert.rejects(saveFigure(42, 'f.svg'), /expected a view, a widget or an experiment result, got number/);
});

test('%timeit options before the code', () => {
  assert.deepEqual(parseTimeitLine('-n 10 -r3 a.b(1, "x y")'), { opts: { loops: 10, runs: 3 }, args: ['a.b(1, "x y")'] });
  assert.deepEqual(parseTimeitLine('f()'), { opts: {}, args: ['f()'] });
  assert.throws(() => parseTimeitLine('-n 0 f()'), /-n "0" is not a positive integer/);
});

test('a notebook run by nbconvert writes its figures (hs.saveFigure, --save) and times code', { skip: jupyterMissing() || undefined }, async () => {
  const { dir, env } = makeJupyterEnv();
  const nb = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: 'hopscope', display_name: 'TypeScript (hopscope)', language: 'typescript' } },
    cells: [
      cell('%time 40 + 2'),
      cell('%%timeit -n 3 -r 2\nlet s = 0\nfor (let i = 0; i < 1000; i++) s += i'),
      cell('%timeit -n 2 -r 1 await new Promise((r) => setTimeout(r, 5))'),
      cell(`const state = ${JSON.stringify(recallGapState())}\nawait hs.saveFigure(state, 'figs/gap.png')`),
      cell("await hs.saveFigure(state, 'figs/gap.svg'); await hs.saveFigure(state, 'figs/gap.pdf')"),
      cell('%load teaching'),
      cell('%crosspatch --no-widget --limit 2 --layers 0-1 --save figs/crosspatch.svg'),
    ],
  };
  const input = path.join(dir, 'figures.ipynb');
  fs.writeFileSync(input, JSON.stringify(nb));
  const t0 = Date.now();
  const r = await runPython(['-m', 'nbconvert', '--to', 'notebook', '--execute', '--output', 'executed.ipynb', input], env, 600_000);
  process.stdout.write(`nbconvert --execute of the figures notebook: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const out = JSON.parse(fs.readFileSync(path.join(dir, 'executed.ipynb'), 'utf8')) as { cells: { outputs: Record<string, unknown>[] }[] };
  const outputs = (i: number) => out.cells[i].outputs;
  const streamText = (i: number) => outputs(i).filter((o) => o.output_type === 'stream').map((o) => text(o.text as string)).join('');
  const result = (i: number) => text((outputs(i).find((o) => o.output_type === 'execute_result')?.data as Record<string, string>)['text/plain']);

  assert.match(streamText(0), /^Wall time: [\d.]+ (ns|µs|ms|s)\n$/);
  assert.equal(result(0), '42');
  assert.match(result(1), /^[\d.]+ (ns|µs|ms) ± [\d.]+ (ns|µs|ms) per loop \(mean ± std\. dev\. of 2 runs, 3 loops each\)$/);
  const awaited = /^([\d.]+) (ms) ± .* of 1 run, 2 loops each\)$/.exec(result(2));
  assert.ok(awaited && Number(awaited[1]) >= 4.5, `an awaited 5 ms timer: ${result(2)}`);

  // Relative paths are the notebook's folder (the kernel's cwd under nbconvert).
  const png = PNG.sync.read(fs.readFileSync(path.join(dir, 'figs', 'gap.png')));
  assert.deepEqual([png.width, png.height], [1280, 800]);
  assert.match(result(3), /figs[\\/]gap\.png'$/);
  assert.match(fs.readFileSync(path.join(dir, 'figs', 'gap.svg'), 'utf8'), /^<svg [^>]*>[\s\S]*paintings/);
  assert.ok(fs.readFileSync(path.join(dir, 'figs', 'gap.pdf')).toString('latin1').startsWith('%PDF-'));
  assert.match(streamText(6), /figure saved to .*figs[\\/]crosspatch\.svg/);
  assert.match(fs.readFileSync(path.join(dir, 'figs', 'crosspatch.svg'), 'utf8'), /^<svg [^>]*>[\s\S]*layer patched/);
});
