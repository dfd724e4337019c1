// Builds the JupyterLab 4 application of the real-UI test (issue #16) into ./app: a core bundle made of the
// npm @jupyterlab/* extensions listed in package.json's "jupyterlab.extensions" and
// @jupyter-widgets/jupyterlab-manager, which loads prebuilt (federated) extensions at start-up the way
// JupyterLab does: the server lists them in the page config, the page loads each remoteEntry.js, initialises
// it with the core's webpack share scope, then activates its plugins with the core's. This is what lets the
// hopscope widget extension, copied by `hopscope install`, run unchanged: its @jupyter-widgets/base is the
// core's (package.json "sharedPackages": bundled false, singleton).
//
// Asset handling (CSS, SVG, fonts) is @jupyterlab/builder's base webpack config, and the settings schemas and
// the theme come from its Build.ensureAssets, as in a JupyterLab build; the rest is ~100 lines of our own.
// A second entry, notebook.js, is the Jupyter Notebook 7 page (/notebooks/<path>, served by server.py): Notebook 7's
// NotebookApp and shell (@jupyter-notebook/application) with the plugins its own app loads on that page
// (package.json "notebook7", the jupyter/notebook app's choice restricted to what is installed here), on the same
// core bundle and share scope, so the same prebuilt hopscope extension runs in both.
// Usage: node build.js            (skips the build when ./app is newer than package-lock.json and this file)
//        node build.js --force
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const webpack = require('webpack');
const { Build } = require('@jupyterlab/builder');
const baseConfig = require('@jupyterlab/builder/lib/webpack.config.base');

const HERE = __dirname;
const APP = path.join(HERE, 'app');
const STAMP = path.join(APP, 'build-stamp.json');
const GEN = path.join(HERE, 'build');
const pkg = require('./package.json');

function upToDate() {
  if (process.argv.includes('--force') || !fs.existsSync(STAMP)) return false;
  const built = fs.statSync(STAMP).mtimeMs;
  return ['package-lock.json', 'build.js', 'package.json'].every((f) => fs.statSync(path.join(HERE, f)).mtimeMs <= built);
}

/** Each extension package's plugin module, from its own package.json (as JupyterLab's build reads it). */
function extensionModules(names) {
  return names.map((name) => {
    const meta = require(`${name}/package.json`);
    const ext = meta.jupyterlab && meta.jupyterlab.extension;
    if (!ext) throw new Error(`${name} declares no jupyterlab.extension`);
    return ext === true ? name : `${name}/${ext}`;
  });
}

/**
 * The share scope: every package a prebuilt extension may take from the core instead of bundling it. JupyterLab
 * shares all of its dependencies as singletons; we share the same families, at the versions installed here.
 */
function sharedPackages() {
  const shared = {};
  const nm = path.join(HERE, 'node_modules');
  const add = (name) => {
    const meta = JSON.parse(fs.readFileSync(path.join(nm, name, 'package.json'), 'utf8'));
    shared[name] = { singleton: true, requiredVersion: `^${meta.version}` };
  };
  for (const scope of ['@jupyterlab', '@jupyter-notebook', '@lumino', '@jupyter-widgets', '@jupyter', '@codemirror', '@lezer']) {
    if (!fs.existsSync(path.join(nm, scope))) continue;
    for (const name of fs.readdirSync(path.join(nm, scope))) {
      // builder is a build tool; nothing at run time imports it.
      if (name !== 'builder' && fs.existsSync(path.join(nm, scope, name, 'package.json'))) add(`${scope}/${name}`);
    }
  }
  for (const name of ['react', 'react-dom', 'yjs']) if (fs.existsSync(path.join(nm, name))) add(name);
  return shared;
}

/** See the generated index.js. */
const LEFT_OUT = [
  '@jupyterlab/notebook-extension:search',
  '@jupyterlab/notebook-extension:toc',
  '@jupyterlab/notebook-extension:language-server',
  '@jupyterlab/notebook-extension:update-raw-mimetype',
  '@jupyterlab/tooltip-extension:consoles',
  '@jupyterlab/tooltip-extension:files',
  // Fetches Jupyter's news from the internet and asks about it in a pop-up over the notebook.
  '@jupyterlab/apputils-extension:announcements',
];

function writeEntry() {
  fs.rmSync(GEN, { recursive: true, force: true });
  fs.mkdirSync(GEN, { recursive: true });
  // bootstrap.js runs first: it must not import anything shared, since the share scope is not filled yet.
  const bootstrap = (entry) => `/* global __webpack_init_sharing__, __webpack_share_scopes__ */
const config = JSON.parse(document.getElementById('jupyter-config-data').textContent || '{}');
// eslint-disable-next-line no-undef
__webpack_public_path__ = config.fullStaticUrl + '/';

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.onload = resolve;
    s.onerror = () => reject(new Error('could not load ' + src));
    s.src = src;
    document.head.appendChild(s);
  });
}

async function loadFederated(ext) {
  await loadScript(config.fullLabextensionsUrl + '/' + ext.name + '/' + ext.load);
  await __webpack_init_sharing__('default');
  await window._JUPYTERLAB[ext.name].init(__webpack_share_scopes__.default);
}

(async () => {
  const federated = config.federated_extensions || [];
  const loaded = await Promise.allSettled(federated.map(loadFederated));
  loaded.forEach((r) => r.status === 'rejected' && console.error(r.reason));
  const { main } = await import('./${entry}');
  await main(federated.filter((e, i) => loaded[i].status === 'fulfilled'));
})();
`;
  fs.writeFileSync(path.join(GEN, 'bootstrap.js'), bootstrap('index.js'));
  fs.writeFileSync(path.join(GEN, 'bootstrap-notebook.js'), bootstrap('notebook.js'));
  fs.writeFileSync(path.join(GEN, 'index.js'), appEntry('JupyterLab', '@jupyterlab/application', Object.fromEntries(pkg.jupyterlab.extensions.map((p) => [p, true]))));
  fs.writeFileSync(path.join(GEN, 'notebook.js'), appEntry('NotebookApp', '@jupyter-notebook/application', pkg.notebook7));
}

/**
 * An application's entry: `chosen` maps each extension package to true (all its plugins) or the plugin ids to
 * load; prebuilt (federated) extensions bring all of theirs.
 */
function appEntry(appClass, appPackage, chosen) {
  const packages = Object.keys(chosen);
  const imports = extensionModules(packages)
    .map((m) => `  import(${JSON.stringify(m)}),`)
    .join('\n');
  return `import { ${appClass} } from '${appPackage}';
import { PageConfig } from '@jupyterlab/coreutils';
import './style.js';

// Plugins of the listed packages that need a package this minimal application leaves out (search, table of
// contents, language servers, metadata forms, consoles, file editors); JupyterLab would log each as "failed to
// activate".
const LEFT_OUT = ${JSON.stringify(LEFT_OUT)};
const CHOSEN = ${JSON.stringify(chosen)};
const PACKAGES = ${JSON.stringify(packages)};

function pluginsOf(mod, chosen) {
  const exported = mod && Object.prototype.hasOwnProperty.call(mod, '__esModule') ? mod.default : mod;
  return (Array.isArray(exported) ? exported : [exported]).filter(
    (p) => (chosen === true || chosen.includes(p.id)) && !LEFT_OUT.includes(p.id) && !PageConfig.Extension.isDisabled(p.id),
  );
}

export async function main(federated) {
  const plugins = [];
  (await Promise.all([
${imports}
  ])).forEach((mod, i) => plugins.push(...pluginsOf(mod, CHOSEN[PACKAGES[i]])));
  for (const ext of federated) {
    if (!ext.extension) continue;
    const factory = await window._JUPYTERLAB[ext.name].get(ext.extension);
    plugins.push(...pluginsOf(factory(), true));
  }
  const app = new ${appClass}();
  app.registerPlugins(plugins);
  await app.start();
  await app.restored;
  // The tests wait on this instead of a fixed sleep.
  document.body.dataset.hopscopeLab = 'ready';
  window.hopscopeLab = app;
}
`;
}

async function main() {
  if (upToDate()) {
    console.log('lab-harness: app is up to date');
    return;
  }
  const t0 = Date.now();
  fs.rmSync(APP, { recursive: true, force: true });
  fs.mkdirSync(APP, { recursive: true });
  writeEntry();
  const packageNames = [...new Set([...pkg.jupyterlab.extensions, ...Object.keys(pkg.notebook7)])];
  const themeConfigs = Build.ensureAssets({ packageNames, output: GEN, schemaOutput: APP, themeOutput: APP });
  const core = {
    ...baseConfig,
    mode: 'production',
    devtool: false,
    entry: { bundle: path.join(GEN, 'bootstrap.js'), notebook: path.join(GEN, 'bootstrap-notebook.js') },
    output: { path: path.join(APP, 'static'), filename: '[name].js', chunkFilename: '[name].[contenthash].js', hashFunction: 'sha256' },
    // Minifying ~10 MB of JupyterLab costs minutes on 2 cores and buys nothing for a local test page.
    optimization: { minimize: false },
    performance: { hints: false },
    plugins: [
      ...baseConfig.plugins,
      new webpack.container.ModuleFederationPlugin({
        name: 'CORE_FEDERATION',
        library: { type: 'var', name: ['_JUPYTERLAB', 'CORE_LIBRARY_FEDERATION'] },
        shared: sharedPackages(),
      }),
    ],
  };
  const stats = await new Promise((resolve, reject) =>
    webpack([core, ...themeConfigs], (err, s) => (err ? reject(err) : resolve(s))),
  );
  if (stats.hasErrors()) {
    console.error(stats.toString({ all: false, errors: true }));
    throw new Error('lab-harness: webpack failed');
  }
  fs.writeFileSync(STAMP, JSON.stringify({ built: new Date().toISOString(), seconds: (Date.now() - t0) / 1000 }) + '\n');
  console.log(`lab-harness: built ${path.relative(process.cwd(), APP)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
