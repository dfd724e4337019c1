// The built JupyterLab extension, loaded the way JupyterLab loads it: its remoteEntry (webpack module
// federation) is initialised with a share scope holding @jupyter-widgets/base, './extension' yields the
// plugin, the plugin registers the widget classes with a registry, and those classes draw a view.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { renderStaticPage } from '../../src/report/static-page';
import { browserSkip, ensureLabextension, ensureStaticBundle, LABEXTENSION, launch, openPage, waitSettled, type Browser } from './browser';
import { probeAccuracyState } from './fixtures';

const skip = browserSkip();
let b: Browser;

before(async () => {
  if (skip) return;
  ensureStaticBundle();
  ensureLabextension();
  b = await launch();
});

after(async () => {
  await b?.close();
});

test('labextension metadata names the plugin and its remote entry', { skip }, () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(LABEXTENSION, 'package.json'), 'utf8'));
  assert.equal(pkg.name, 'hopscope-widgets');
  assert.equal(pkg.version, '0.1.0');
  assert.equal(pkg.jupyterlab._build.extension, './extension');
  assert.ok(fs.existsSync(path.join(LABEXTENSION, pkg.jupyterlab._build.load)));
});

test('the federated bundle registers HopscopeViewModel/HopscopeView, which draw a view', { skip }, async () => {
  // The static page supplies @jupyter-widgets/base and HTMLManager, as JupyterLab's widget manager would.
  await openPage(b, renderStaticPage({ title: 'Labextension', sections: [{ html: '<div id="lab"></div>' }] }), 'labextension');
  const pkg = JSON.parse(fs.readFileSync(path.join(LABEXTENSION, 'package.json'), 'utf8'));
  const entry = `file://${path.join(LABEXTENSION, pkg.jupyterlab._build.load)}`;
  const state = probeAccuracyState();
  const result = (await b.page.evaluate(`(async () => {
    await new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = ${JSON.stringify(entry)};
      s.onload = resolve;
      s.onerror = () => reject(new Error('remoteEntry failed to load'));
      document.head.appendChild(s);
    });
    const container = window._JUPYTERLAB['hopscope-widgets'];
    const { base, HTMLManager } = window.hopscopeStatic;
    const scope = { '@jupyter-widgets/base': { '6.0.12': { get: () => Promise.resolve(() => base), from: 'jupyterlab', eager: false, loaded: 1 } } };
    await container.init(scope);
    const plugin = (await container.get('./extension'))().default;
    const registered = [];
    plugin.activate({}, { registerWidget: (d) => registered.push(d) });
    const exports = registered[0].exports;
    const manager = new HTMLManager({ loader: async () => exports });
    const model = await manager.new_model(
      { model_name: 'HopscopeViewModel', model_module: 'hopscope-widgets', model_module_version: '^0.1.0', model_id: 'lab-1' },
      Object.assign({ _view_name: 'HopscopeView', _view_module: 'hopscope-widgets', _view_module_version: '^0.1.0' }, ${JSON.stringify(state)}));
    await manager.display_view(manager.create_view(model), document.getElementById('lab'));
    return {
      id: plugin.id,
      requiresRegistry: plugin.requires[0] === base.IJupyterWidgetRegistry,
      name: registered[0].name,
      version: registered[0].version,
      classes: Object.keys(exports).sort(),
      fromBundle: exports.HopscopeView !== window.hopscopeStatic.widgets.HopscopeView,
      sharedBase: Object.getPrototypeOf(exports.HopscopeView) === base.DOMWidgetView,
    };
  })()`)) as Record<string, unknown>;
  assert.deepEqual(result, {
    id: 'hopscope-widgets:plugin',
    requiresRegistry: true,
    name: 'hopscope-widgets',
    version: '0.1.0',
    classes: ['HopscopeView', 'HopscopeViewModel'],
    fromBundle: true,
    sharedBase: true,
  });
  await waitSettled(b.page);
  const drawn = (await b.page.evaluate(`(() => {
    const w = document.querySelector('#lab .hopscope-widget');
    return { status: w.dataset.hsStatus, traces: w.querySelectorAll('.main-svg .trace').length };
  })()`)) as { status: string; traces: number };
  assert.equal(drawn.status, 'ready');
  assert.ok(drawn.traces >= 2);
  assert.deepEqual(b.errors, []);
  assert.deepEqual(b.blocked, []);
});
