// `hopscope export`: a notebook with saved widget state → one HTML file → opened in headless Chromium with no
// network: markdown and outputs shown, the saved views drawn, the unsaved one explained. One browser.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { exportNotebook } from '../../src/report/static-page';
import { browserSkip, ensureStaticBundle, launch, openPage, pixelStats, type Browser } from './browser';
import { sampleNotebook } from './notebook';

const skip = browserSkip();
let b: Browser;

before(async () => {
  if (skip) return;
  ensureStaticBundle();
  b = await launch();
});

after(async () => {
  await b?.close();
});

test('an exported notebook renders offline: markdown, outputs and widget views', { skip }, async () => {
  const ipynb = path.join(b.tmp, 'demo.ipynb');
  fs.writeFileSync(ipynb, JSON.stringify(sampleNotebook(), null, 1));
  const html = exportNotebook(ipynb);
  await openPage(b, html, 'demo');

  const page = (await b.page.evaluate(`({
    h1: document.querySelector('h1') && document.querySelector('h1').textContent,
    images: Array.from(document.querySelectorAll('.nb-output img')).filter((i) => i.complete && i.naturalWidth > 0).length,
    html: document.querySelectorAll('table.tiny').length,
    errors: Array.from(document.querySelectorAll('.nb-error')).map((e) => e.textContent),
    scripts: document.querySelectorAll('script:not([type])').length,
    widgets: Array.from(document.querySelectorAll('.hopscope-widget')).map((w) => ({
      status: w.dataset.hsStatus,
      kind: w.querySelector('.hs-kind').textContent,
      svgs: w.querySelectorAll('svg.main-svg').length,
      traces: w.querySelectorAll('.main-svg .trace').length + w.querySelectorAll('.heatmaplayer image').length,
    })),
    notes: Array.from(document.querySelectorAll('.nb-note')).map((e) => e.textContent),
    fallbacks: Array.from(document.querySelectorAll('.nb-output pre')).map((e) => e.textContent),
  })`)) as {
    h1: string;
    images: number;
    html: number;
    errors: string[];
    scripts: number;
    widgets: { status: string; kind: string; svgs: number; traces: number }[];
    notes: string[];
    fallbacks: string[];
  };
  const report = (await b.page.evaluate('window.hopscopeStatic.ready')) as { views: number; failures: string[] };
  assert.equal(page.h1, 'Two-hop recall: where is the entity resolved?');
  assert.equal(page.images, 1, 'the PNG output is shown');
  assert.equal(page.html, 1, 'the HTML output is shown');
  assert.match(page.errors[0], /^InputError: image span lengths differ/);
  assert.equal(page.scripts, 1, 'only the renderer runs: the markdown <script> stayed text');
  assert.deepEqual(page.widgets.map((w) => [w.kind, w.status]), [['probe-accuracy', 'ready'], ['logit-lens', 'ready']]);
  for (const w of page.widgets) assert.ok(w.svgs > 0 && w.traces > 0, `${w.kind}: nothing drawn`);
  // The view whose state was never saved: its text fallback, and a note on how to keep the chart.
  assert.equal(page.notes.length, 1);
  assert.match(page.notes[0], /state was not saved in this notebook; re-run it with jupyter nbconvert/);
  assert.ok(page.fallbacks.includes('HopscopeView(knockout-map)'));
  assert.deepEqual(report, { views: 2, failures: [] });

  const shot = path.join(b.tmp, 'notebook.png');
  await b.page.screenshot({ path: shot, fullPage: true });
  const px = pixelStats(fs.readFileSync(shot));
  assert.ok(px.colours > 50 && px.inked > 0.05, `page screenshot looks empty (${JSON.stringify(px)})`);
  await b.page.locator('.hopscope-widget').nth(1).screenshot({ path: path.join(b.tmp, 'notebook-logit-lens.png') });
  assert.ok(pixelStats(fs.readFileSync(path.join(b.tmp, 'notebook-logit-lens.png'))).colours > 30);
  assert.deepEqual(b.errors, []);
  assert.deepEqual(b.blocked, []);
});
