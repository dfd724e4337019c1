// The static page writer without a browser: structure, escaping, saved buffers, notebook conversion, and the
// message when the renderer bundle has not been built.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/errors';
import { markdownToHtml } from '../../src/report/static-markdown';
import { exportNotebook, renderStaticPage, savedViewModel, WIDGET_STATE_MIME } from '../../src/report/static-page';
import { knockoutMapState, logitLensState } from './fixtures';
import { sampleNotebook } from './notebook';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-static-page-'));
// A stand-in bundle: these tests check the page around it; the browser tests use the real one.
const bundle = path.join(tmp, 'static.js');
fs.writeFileSync(bundle, 'window.hopscopeStatic = {}; var s = "</script><!-- x";');

function stateOf(html: string): { state: Record<string, { state: Record<string, unknown>; buffers?: { path: unknown[] }[] }> } {
  const m = html.match(new RegExp(`<script type="${WIDGET_STATE_MIME.replace(/[+.]/g, '\\$&')}">([^<]*)</script>`));
  assert.ok(m, 'widget state embedded');
  return JSON.parse(m[1]);
}

test('a page embeds state, view tags and the inlined bundle, escaped for <script>', () => {
  const html = renderStaticPage({
    title: 'Report </script><b>',
    bundlePath: bundle,
    sections: [{ html: '<p>intro</p>', widgetState: { ...knockoutMapState(), title: 'a </script> in a title' } }],
  });
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /<title>Report &lt;\/script&gt;&lt;b&gt;<\/title>/);
  assert.equal(html.match(/<\/script>/g)?.length, 3, 'state, view, bundle: only the real closing tags');
  assert.match(html, /\\x3C\/script>\\x3C!-- x/);
  const doc = stateOf(html);
  const model = doc.state['hopscope-view-0'];
  assert.equal(model.state._model_name, 'HopscopeViewModel');
  assert.equal(model.state.title, 'a </script> in a title');
  // The typed array went out as a base64 buffer at data.relChange.buffer, its dtype kept.
  assert.deepEqual(model.buffers?.map((b) => b.path), [['data', 'relChange', 'buffer']]);
  // ipywidgets' rule (the kernel's too, src/report/buffers.ts): a dict key holding bytes is dropped, the reader puts it back.
  assert.deepEqual((model.state.data as { relChange: unknown }).relChange, { dtype: 'float32', shape: [4, 24] });
});

test('typed arrays anywhere in the data become buffers with their dtype', () => {
  const state = logitLensState();
  (state.data as Record<string, unknown>).layers = Int32Array.from([1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31]);
  const saved = savedViewModel(state);
  const paths = (saved.buffers ?? []).map((b) => b.path.join('.')).sort();
  assert.deepEqual(paths, ['data.layers.buffer', 'data.topProbs.buffer']);
  assert.deepEqual((saved.state.data as Record<string, unknown>).layers, { dtype: 'int32', shape: [16] });
});

test('a missing renderer bundle says how to build it', () => {
  assert.throws(
    () => renderStaticPage({ title: 'x', sections: [], bundlePath: path.join(tmp, 'nope.js') }),
    (e: unknown) => e instanceof ConfigError && /npm run build:widgets/.test(e.message) && /nope\.js/.test(e.message),
  );
});

test('a notebook exports its markdown, outputs and saved widget views', () => {
  const file = path.join(tmp, 'demo.ipynb');
  fs.writeFileSync(file, JSON.stringify(sampleNotebook()));
  const html = exportNotebook(file, { bundlePath: bundle });
  assert.match(html, /<title>Two-hop recall: where is the entity resolved\?<\/title>/);
  assert.match(html, /<h1>Two-hop recall/);
  assert.match(html, /<strong>image<\/strong> and <em>text<\/em>/);
  assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/, 'markdown HTML scripts are not run');
  assert.match(html, /<pre class="nb-stream">loaded llava/);
  assert.match(html, /<img src="data:image\/png;base64,iVBOR/);
  assert.match(html, /<table class="tiny">/);
  assert.match(html, /InputError: image span lengths differ/);
  assert.doesNotMatch(html, /\u001b\[/, 'ANSI colours stripped');
  assert.match(html, /its state was not saved in this notebook/);
  assert.equal(html.match(/application\/vnd\.jupyter\.widget-view\+json/g)?.length, 2, 'two views with saved state');
  assert.deepEqual(Object.keys(stateOf(html).state).sort(), ['model-lens', 'model-probe']);
});

test('markdown: headings, lists, tables, code, links', () => {
  const html = markdownToHtml('## Result\n\n| a | b |\n|---|--:|\n| 1 | 2 |\n\n1. one\n2. two\n\n```ts\nconst x = 1 < 2;\n```\n\nsee [paper](https://arxiv.org/abs/2412.14133) and [bad](javascript:alert(1))');
  assert.match(html, /<h2>Result<\/h2>/);
  assert.match(html, /<th>a<\/th><th style="text-align:right">b<\/th>/);
  assert.match(html, /<ol><li>one<\/li><li>two<\/li><\/ol>/);
  assert.match(html, /<pre><code class="language-ts">const x = 1 &lt; 2;<\/code><\/pre>/);
  assert.match(html, /<a href="https:\/\/arxiv.org\/abs\/2412.14133">paper<\/a>/);
  assert.match(html, /<a href="">bad<\/a>/);
});
