#!/usr/bin/env node
// Builds hopscope-widgets: `lib/` (ES modules, esbuild), `dist/static.js` (one browser bundle with
// html-manager + plotly for static pages, esbuild) and `labextension/` (@jupyterlab/builder's
// build-labextension, run with plain node; no Python jupyterlab needed).
// `live` (not part of the default build) bundles src/live/ to dist/live.js: the page of the live round-trip test.
// Usage: node scripts/build.js [lib|static|labextension|live|clean ...]   (no argument: all but live)
'use strict';

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const esbuild = require('esbuild');

const root = path.resolve(__dirname, '..');
const rel = (...p) => path.join(root, ...p);

/** CSS imported from JS (ipywidgets controls, output area) becomes a <style> injected when first required. */
const injectCss = {
  name: 'inject-css',
  setup(build) {
    build.onLoad({ filter: /\.css$/ }, async (args) => {
      const out = await esbuild.build({
        entryPoints: [args.path],
        bundle: true,
        write: false,
        minify: true,
        logLevel: 'silent',
        loader: { '.svg': 'dataurl', '.png': 'dataurl', '.woff': 'dataurl', '.woff2': 'dataurl', '.ttf': 'dataurl', '.eot': 'dataurl' },
      });
      const css = out.outputFiles[0].text;
      return {
        contents: `var css = ${JSON.stringify(css)};\nif (typeof document !== 'undefined') { var s = document.createElement('style'); s.textContent = css; document.head.appendChild(s); }\nmodule.exports = css;\n`,
        loader: 'js',
      };
    });
  },
};

async function buildLib() {
  fs.rmSync(rel('lib'), { recursive: true, force: true });
  await esbuild.build({
    entryPoints: [rel('src/index.ts'), rel('src/plugin.ts')],
    outdir: rel('lib'),
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    // JupyterLab provides these (shared singletons) and webpack bundles plotly as a shared module.
    external: ['@jupyter-widgets/base', '@lumino/*', 'plotly.js-dist-min'],
    logLevel: 'warning',
  });
  console.log('lib/ built');
}

async function buildStatic(entry = 'src/static/index.ts', outfile = 'dist/static.js') {
  fs.mkdirSync(rel('dist'), { recursive: true });
  const result = await esbuild.build({
    entryPoints: [rel(entry)],
    outfile: rel(outfile),
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    legalComments: 'none',
    define: { 'process.env.NODE_ENV': '"production"' },
    plugins: [injectCss],
    loader: { '.svg': 'text' },
    logLevel: 'warning',
    metafile: true,
  });
  const size = fs.statSync(rel(outfile)).size;
  console.log(`${outfile} built (${(size / 1e6).toFixed(1)} MB, ${Object.keys(result.metafile.inputs).length} modules)`);
}

function buildLabextension() {
  if (!fs.existsSync(rel('lib/plugin.js'))) throw new Error('lib/plugin.js is missing: run `node scripts/build.js lib` first');
  const bin = require.resolve('@jupyterlab/builder/lib/build-labextension.js');
  const r = spawnSync(process.execPath, [bin, '--core-path', rel('core'), root], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (r.status !== 0) {
    process.stdout.write(r.stdout ?? '');
    throw new Error(`build-labextension failed (exit ${r.status})`);
  }
  const pkg = JSON.parse(fs.readFileSync(rel('labextension/package.json'), 'utf8'));
  console.log(`labextension/ built (${pkg.jupyterlab._build.load})`);
}

function clean() {
  for (const d of ['lib', 'dist', 'labextension']) fs.rmSync(rel(d), { recursive: true, force: true });
}

async function main() {
  const steps = process.argv.slice(2);
  const all = steps.length === 0;
  const t0 = Date.now();
  if (steps.includes('clean')) clean();
  if (all || steps.includes('lib') || steps.includes('labextension')) await buildLib();
  if (all || steps.includes('static')) await buildStatic();
  if (all || steps.includes('labextension')) buildLabextension();
  if (steps.includes('live')) await buildStatic('src/live/index.ts', 'dist/live.js');
  console.log(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
