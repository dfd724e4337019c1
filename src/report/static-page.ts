// Writes one self-contained HTML page (no kernel, no network) from widget states: the static renderer bundle
// (widgets/dist/static.js: html-manager + hopscope views + plotly) is inlined, the widget state is embedded
// as application/vnd.jupyter.widget-state+json, and each view is placed with a widget-view+json tag.
// Used by `hopscope export NOTEBOOK.ipynb --out FILE.html` (exportNotebook) and by the demo report.

import * as fs from 'fs';
import * as path from 'path';
import { ConfigError, InputError } from '../errors';
import { markdownToHtml, escapeHtml } from './static-markdown';
import { WIDGET_NAMES } from './views';
import { typedArrayDtype } from './view-wire';
import { removeBuffers } from './buffers';
import { engineConfig } from '../engine/config';

export const WIDGET_STATE_MIME = 'application/vnd.jupyter.widget-state+json';
export const WIDGET_VIEW_MIME = 'application/vnd.jupyter.widget-view+json';

/** A saved binary buffer (widget protocol: base64 or hex text at a path inside the model state). */
export interface SavedBuffer {
  path: (string | number)[];
  data: string;
  encoding: 'base64' | 'hex';
}

export interface SavedModel {
  model_name: string;
  model_module: string;
  model_module_version: string;
  state: Record<string, unknown>;
  buffers?: SavedBuffer[];
}

/** The `application/vnd.jupyter.widget-state+json` document (as nbclient saves it in notebook metadata). */
export interface WidgetStateDocument {
  version_major: number;
  version_minor: number;
  state: Record<string, SavedModel>;
}

/** A HopscopeView state as the kernel holds it; typed arrays inside `data` become saved binary buffers. */
export interface ViewStateInput {
  view: string;
  title?: string;
  data: unknown;
  progress?: { done: number; total: number } | null;
  error?: string | null;
  /** A comparison (compareResults): the model behind `data`, and the other models' data drawn with it. */
  label?: string | null;
  compare?: { label: string; data: unknown }[] | null;
}

export interface StaticSection {
  /** Trusted HTML shown before the widget (headings, prose, tables). */
  html?: string;
  /** One view's state, or a whole saved widget-state document (then `viewId` names the model to show). */
  widgetState?: ViewStateInput | WidgetStateDocument;
  viewId?: string;
  /** Views side by side after `html` (e.g. one model per column), each with its own caption. */
  columns?: { html?: string; widgetState?: ViewStateInput }[];
}

export interface StaticPageOptions {
  title: string;
  sections: StaticSection[];
  /** The static renderer bundle; defaults to widgets/dist/static.js (or $HOPSCOPE_WIDGETS_STATIC). */
  bundlePath?: string;
  /** More saved widget models (e.g. a notebook's whole widget state), embedded along with the sections'. */
  widgetState?: WidgetStateDocument;
  /** Print the title as an <h1> (default true; a notebook brings its own heading). */
  heading?: boolean;
}

export function staticBundlePath(): string {
  return engineConfig().widgetsStatic ?? path.resolve(__dirname, '../../widgets/dist/static.js');
}

function readBundle(bundlePath: string): string {
  if (!fs.existsSync(bundlePath)) {
    throw new ConfigError(
      `The static widget renderer ${bundlePath} is missing. Build it with \`npm run build:widgets\` ` +
        '(or only this bundle: `npm run build:static -w hopscope-widgets`), then export again.',
    );
  }
  return fs.readFileSync(bundlePath, 'utf8');
}

function isStateDocument(v: unknown): v is WidgetStateDocument {
  return typeof v === 'object' && v !== null && 'state' in v && 'version_major' in v;
}

/**
 * A copy of `value` with each bare typed array wrapped as {dtype, shape, buffer} (view-wire.ts's BinaryArray), so
 * the reader knows how to decode its bytes; an ArrayBuffer or an already wrapped array is left as it is.
 */
function wrapTypedArrays(value: unknown): unknown {
  if (ArrayBuffer.isView(value)) {
    const dtype = typedArrayDtype(value);
    return dtype === null ? value : { dtype, shape: [(value as unknown as { length: number }).length], buffer: value };
  }
  if (Array.isArray(value)) return value.map(wrapTypedArrays);
  if (typeof value === 'object' && value !== null && !(value instanceof ArrayBuffer)) {
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) copy[k] = k === 'buffer' && ArrayBuffer.isView(v) ? v : wrapTypedArrays(v);
    return copy;
  }
  return value;
}

/** A view state → a saved HopscopeViewModel entry. */
export function savedViewModel(state: ViewStateInput): SavedModel {
  // ipywidgets' remove_buffers, as the kernel sends it: the bytes leave the JSON, named by their paths.
  const compare = state.compare && state.compare.length > 0 ? state.compare.map((c) => ({ label: c.label, data: wrapTypedArrays(c.data) })) : null;
  const split = removeBuffers({ data: wrapTypedArrays(state.data), compare });
  const data = split.state.data;
  const buffers: SavedBuffer[] = split.buffers.map((b, i) => ({ path: split.buffer_paths[i], data: b.toString('base64'), encoding: 'base64' }));
  const model: SavedModel = {
    model_name: WIDGET_NAMES._model_name,
    model_module: WIDGET_NAMES._model_module,
    model_module_version: WIDGET_NAMES._model_module_version,
    state: {
      ...WIDGET_NAMES,
      view: state.view,
      title: state.title ?? '',
      data,
      progress: state.progress ?? null,
      error: state.error ?? null,
      label: state.label ?? null,
      compare: split.state.compare ?? null,
    },
  };
  if (buffers.length > 0) model.buffers = buffers;
  return model;
}

/** JSON safe to place inside a <script> element. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** JavaScript safe to inline in a <script> element (no early `</script`, no `<!--` escape state). */
function inlineScript(js: string): string {
  return js.replace(/<\/(script)/gi, '\\x3C/$1').replace(/<!--/g, '\\x3C!--');
}

const PAGE_CSS = `
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222; background: #fff; line-height: 1.5; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 20px 60px; }
.hs-section { margin: 18px 0; }
.hs-section img { max-width: 100%; }
.hs-row { display: flex; gap: 16px; flex-wrap: wrap; } .hs-col { flex: 1 1 380px; min-width: 0; overflow-x: auto; }
.nb-input { background: #f5f7f9; border-left: 3px solid #9ab; padding: 8px 10px; overflow-x: auto; font-size: 12.5px; }
.nb-output pre, .nb-stream { background: #fff; padding: 4px 10px; overflow-x: auto; font-size: 12.5px; margin: 4px 0; }
.nb-stderr { background: #fff5f5; }
.nb-error { background: #fdecea; border-left: 3px solid #d32f2f; padding: 6px 10px; white-space: pre-wrap; font-size: 12.5px; }
.nb-note { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; } th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; }
pre code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
blockquote { border-left: 3px solid #ccc; margin-left: 0; padding-left: 12px; color: #555; }
footer { color: #888; font-size: 0.85em; margin-top: 40px; }
`;

/** A self-contained HTML page: sections of HTML and widget views, all drawn in the browser from saved state. */
export function renderStaticPage(options: StaticPageOptions): string {
  const bundle = readBundle(options.bundlePath ?? staticBundlePath());
  const merged: WidgetStateDocument = { version_major: 2, version_minor: 0, state: { ...(options.widgetState?.state ?? {}) } };
  const body: string[] = [];
  options.sections.forEach((section, index) => {
    const parts: string[] = [];
    if (section.html) parts.push(section.html);
    const ws = section.widgetState;
    if (ws !== undefined) {
      let modelId: string;
      if (isStateDocument(ws)) {
        Object.assign(merged.state, ws.state);
        const ids = Object.keys(ws.state);
        modelId = section.viewId ?? ids.find((id) => ws.state[id].model_name === WIDGET_NAMES._model_name) ?? ids[0] ?? '';
        if (!modelId) throw new InputError(`sections[${index}].widgetState holds no widget models; pass a view state or a non-empty widget-state document`);
      } else {
        if (typeof ws.view !== 'string') throw new InputError(`sections[${index}].widgetState.view must name a view kind, got ${JSON.stringify(ws.view)}`);
        modelId = section.viewId ?? `hopscope-view-${index}`;
        merged.state[modelId] = savedViewModel(ws);
      }
      parts.push(`<script type="${WIDGET_VIEW_MIME}">${scriptJson({ version_major: 2, version_minor: 0, model_id: modelId })}</script>`);
    }
    if (section.columns?.length) {
      const cols = section.columns.map((col, c) => {
        const inner: string[] = col.html ? [col.html] : [];
        if (col.widgetState) {
          if (typeof col.widgetState.view !== 'string') throw new InputError(`sections[${index}].columns[${c}].widgetState.view must name a view kind, got ${JSON.stringify(col.widgetState.view)}`);
          const modelId = `hopscope-view-${index}-${c}`;
          merged.state[modelId] = savedViewModel(col.widgetState);
          inner.push(`<script type="${WIDGET_VIEW_MIME}">${scriptJson({ version_major: 2, version_minor: 0, model_id: modelId })}</script>`);
        }
        return `<div class="hs-col">\n${inner.join('\n')}\n</div>`;
      });
      parts.push(`<div class="hs-row">\n${cols.join('\n')}\n</div>`);
    }
    body.push(`<section class="hs-section">\n${parts.join('\n')}\n</section>`);
  });
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(options.title)}</title>`,
    `<style>${PAGE_CSS}</style>`,
    `<script type="${WIDGET_STATE_MIME}">${scriptJson(merged)}</script>`,
    '</head>',
    '<body>',
    '<main>',
    options.heading === false ? '' : `<h1>${escapeHtml(options.title)}</h1>`,
    ...body,
    `<footer>Generated by hopscope. Charts are drawn in this page from saved widget state; no kernel or network is needed.</footer>`,
    '</main>',
    `<script>${inlineScript(bundle)}</script>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// Notebooks

type MimeBundle = Record<string, unknown>;

interface NotebookOutput {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: MimeBundle;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}

interface NotebookCell {
  cell_type: string;
  source: string | string[];
  outputs?: NotebookOutput[];
  attachments?: Record<string, MimeBundle>;
}

interface Notebook {
  cells: NotebookCell[];
  metadata?: { title?: string; widgets?: Record<string, unknown> };
}

function text(v: unknown): string {
  if (Array.isArray(v)) return v.map(String).join('');
  return typeof v === 'string' ? v : '';
}

function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');
}

function imageTag(mime: string, data: unknown): string {
  return `<img src="data:${mime};base64,${text(data).replace(/\s+/g, '')}" alt="">`;
}

/** One output's HTML: the richest representation we can show offline. */
function outputHtml(out: NotebookOutput, widgetIds: Set<string>): string {
  switch (out.output_type) {
    case 'stream':
      return `<pre class="nb-stream${out.name === 'stderr' ? ' nb-stderr' : ''}">${escapeHtml(text(out.text))}</pre>`;
    case 'error':
      return `<pre class="nb-error">${escapeHtml(stripAnsi(`${out.ename ?? 'Error'}: ${out.evalue ?? ''}\n${(out.traceback ?? []).join('\n')}`))}</pre>`;
    case 'display_data':
    case 'execute_result': {
      const data = out.data ?? {};
      const view = data[WIDGET_VIEW_MIME] as { model_id?: unknown } | undefined;
      if (view && typeof view.model_id === 'string' && widgetIds.has(view.model_id)) {
        return `<script type="${WIDGET_VIEW_MIME}">${scriptJson({ version_major: 2, version_minor: 0, model_id: view.model_id })}</script>`;
      }
      let note = '';
      if (view) note = '<div class="nb-note">(widget: its state was not saved in this notebook; re-run it with <code>jupyter nbconvert --to notebook --execute</code> to keep the chart)</div>';
      if ('text/html' in data) return note + `<div class="nb-output">${text(data['text/html'])}</div>`;
      if ('image/svg+xml' in data) return note + `<div class="nb-output">${text(data['image/svg+xml'])}</div>`;
      for (const mime of ['image/png', 'image/jpeg', 'image/gif', 'image/webp']) {
        if (mime in data) return note + `<div class="nb-output">${imageTag(mime, data[mime])}</div>`;
      }
      if ('text/markdown' in data) return note + `<div class="nb-output">${markdownToHtml(text(data['text/markdown']))}</div>`;
      if ('application/json' in data) return note + `<div class="nb-output"><pre>${escapeHtml(JSON.stringify(data['application/json'], null, 2))}</pre></div>`;
      if ('text/plain' in data) return note + `<div class="nb-output"><pre>${escapeHtml(text(data['text/plain']))}</pre></div>`;
      return note;
    }
    default:
      return '';
  }
}

export interface ExportOptions {
  /** Show code cells' source above their outputs (default true). */
  includeCode?: boolean;
  title?: string;
  bundlePath?: string;
}

/** A notebook (.ipynb) → one self-contained HTML page with its markdown, outputs and widget views. */
export function exportNotebook(ipynbPath: string, options: ExportOptions = {}): string {
  let nb: Notebook;
  try {
    nb = JSON.parse(fs.readFileSync(ipynbPath, 'utf8')) as Notebook;
  } catch (e) {
    throw new InputError(`Cannot read notebook ${ipynbPath}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!nb || !Array.isArray(nb.cells)) throw new InputError(`${ipynbPath} is not a notebook: it has no "cells" list`);
  const saved = nb.metadata?.widgets?.[WIDGET_STATE_MIME];
  const stateDoc: WidgetStateDocument | null = isStateDocument(saved) ? saved : null;
  const widgetIds = new Set(Object.keys(stateDoc?.state ?? {}));
  const includeCode = options.includeCode ?? true;
  const sections: StaticSection[] = [];
  let firstHeading: string | null = null;
  for (const cell of nb.cells) {
    const source = text(cell.source);
    if (cell.cell_type === 'markdown') {
      if (firstHeading === null) firstHeading = source.match(/^#\s+(.+)$/m)?.[1] ?? null;
      const attachments = (name: string): string | null => {
        const bundle = cell.attachments?.[name];
        if (!bundle) return null;
        const mime = Object.keys(bundle).find((m) => m.startsWith('image/'));
        return mime ? `data:${mime};base64,${text(bundle[mime]).replace(/\s+/g, '')}` : null;
      };
      sections.push({ html: markdownToHtml(source, attachments) });
    } else if (cell.cell_type === 'code') {
      const parts: string[] = [];
      if (includeCode && source.trim() !== '') parts.push(`<pre class="nb-input"><code>${escapeHtml(source)}</code></pre>`);
      for (const out of cell.outputs ?? []) parts.push(outputHtml(out, widgetIds));
      if (parts.length > 0) sections.push({ html: parts.join('\n') });
    }
  }
  const title = options.title ?? nb.metadata?.title ?? firstHeading ?? path.basename(ipynbPath, '.ipynb');
  // The saved state goes in whole: views may reference other models (layouts, ipywidgets controls).
  return renderStaticPage({
    title,
    sections,
    bundlePath: options.bundlePath,
    widgetState: stateDoc ?? undefined,
    heading: firstHeading === null,
  });
}
