// The live round trip (issue #7): a real classic notebook server (Debian's jupyter-notebook 6.4) runs the
// hopscope kernel; a page in headless Chromium, served from the server's origin, talks to it with
// @jupyterlab/services and draws widgets with an HTMLManager whose comms are the kernel's
// (widgets/src/live/index.ts, bundled to widgets/dist/live.js). A %crosspatch cell on the teaching model
// shows a layer-switch view in the page; a kernel-side `set` (binary buffer) redraws it; a real mouse click on
// a layer reaches the kernel, which runs that single patch and answers into the view; a second connection
// restores the widget through the jupyter.widget.control comm. Skipped without chromium, the notebook
// package or the teaching model.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PYTHON, REPO, makeJupyterEnv, tempDir } from '../kernel/jupyter-env';
import type { ExecuteResult, RestoreResult } from '../../widgets/src/live/results';
import { LIVE_BUNDLE, browserSkip, clickLayer, ensureLiveBundle, launch, type Browser } from './browser';
import { freePort, stopJupyter, waitFor } from './servers';
import { TEACHING_DIR } from '../../src/data/teaching-models';

const DATA = path.join(REPO, 'data', 'toyworld');
const TEACHING = path.join(TEACHING_DIR, 'config.json');
const LAYERS = [0, 1, 2, 3, 4, 5];
/** What the kernel-side update writes into the view (exact in float32, sent as a binary buffer). */
const UPDATED = [0.125, 0.25, 0.375, 0.5, 0.625, 0.75];
const CLICKED_LAYER = 3;
const WAIT = { timeout: 120_000 };
/** The notebook server answering /api/status; the wait ends early when the server process exits. */
const SERVER_UP_MS = 120_000;
/** Per step: generous for a loaded 2-core CI box (the whole file takes ~20 s on one shared with training). */
const STEP = { timeout: 240_000 };

/** The classic server (notebook 6: `--NotebookApp.*` flags); notebook 7 is a different application. */
function notebookMissing(): string | false {
  const r = spawnSync(PYTHON, ['-c', 'import notebook, jupyter_client; assert notebook.version_info[0] == 6, notebook.__version__'], { encoding: 'utf8' });
  return r.status === 0 ? false : `${PYTHON} has no classic notebook server 6.x (apt-get install jupyter-notebook): ${r.stderr.trim().split('\n').pop()}`;
}

const skip =
  browserSkip() || notebookMissing() || (fs.existsSync(TEACHING) ? false : `the teaching model is not built (${TEACHING_DIR})`);

interface PlotInfo {
  status: string;
  title: string;
  draws: number;
  x: number[];
  donor: (number | null)[];
  target: (number | null)[];
  answerHead: string | null;
  answerText: string | null;
  details: string | null;
}

describe('live round trip: notebook server + hopscope kernel + page', { skip: skip || undefined }, () => {
  let server: ChildProcess | null = null;
  let serverLog = '';
  let serverExit: string | null = null;
  let origin = '';
  let runtimeDir = '';
  let b: Browser | null = null;
  let modelId = '';
  const t0 = Date.now();
  const stamp = (what: string) => process.stdout.write(`live: ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);

  /** For failure messages: the end of the server's log (kernel logs included) and the page's errors. */
  const context = () =>
    `server log:\n${serverLog.slice(-3000)}\npage errors: ${JSON.stringify(b?.errors ?? [])}`;
  const page = () => {
    assert.ok(b, 'browser started');
    return b.page;
  };
  const execute = async (code: string): Promise<ExecuteResult> => {
    const r = (await page().evaluate(`window.hopscopeLive.execute(${JSON.stringify(code)})`)) as ExecuteResult;
    const errors = r.outputs.filter((o) => o.type === 'error');
    assert.equal(r.status, 'ok', `cell failed: ${code}\n${JSON.stringify(errors)}\n${context()}`);
    assert.deepEqual(r.failures, [], 'views drawn');
    return r;
  };
  const stdout = (r: ExecuteResult) =>
    r.outputs
      .filter((o) => o.type === 'stream')
      .map((o) => o.text)
      .join('');
  const plotInfo = async (host: string): Promise<PlotInfo> =>
    (await page().evaluate(`(() => {
      const w = document.querySelector(${JSON.stringify(`${host} .hopscope-widget`)});
      if (!w) return null;
      const gd = w.querySelector('.hs-plot-layer-switch');
      const data = (gd && gd.data) || [];
      const text = (sel) => { const e = w.querySelector(sel); return e && !e.closest('[hidden]') ? e.textContent : null; };
      return {
        status: w.dataset.hsStatus, title: w.querySelector('.hs-title').textContent, draws: Number(w.dataset.hsDraws || 0),
        x: data[0] ? Array.from(data[0].x) : [], donor: data[0] ? Array.from(data[0].y) : [], target: data[1] ? Array.from(data[1].y) : [],
        answerHead: text('.hs-answer-head'), answerText: text('.hs-answer-text'), details: text('.hs-answer pre'),
      };
    })()`)) as PlotInfo;
  const liveView = () => `.live-output[data-model-id="${modelId}"]`;

  before(async () => {
    ensureLiveBundle();
    const jenv = makeJupyterEnv(); // the kernelspec, installed by `hopscope install --prefix` into a temp folder
    runtimeDir = jenv.env.JUPYTER_RUNTIME_DIR ?? '';
    const root = tempDir('hopscope-live-');
    // The page and its bundle are served by the server itself (extra_static_paths → /static/), so the page has
    // the server's origin: same-origin REST and websocket calls, as JupyterLab's own pages make them.
    const statics = path.join(root, 'static');
    fs.mkdirSync(statics);
    fs.copyFileSync(LIVE_BUNDLE, path.join(statics, 'hopscope-live.js'));
    fs.writeFileSync(
      path.join(statics, 'hopscope-live.html'),
      '<!doctype html><html><head><meta charset="utf-8"><title>hopscope live</title></head><body><div id="outputs"></div><script src="hopscope-live.js"></script></body></html>',
    );
    const port = await freePort();
    origin = `http://127.0.0.1:${port}`;
    server = spawn(
      PYTHON,
      [
        '-m', 'notebook', '--no-browser', `--port=${port}`, '--port-retries=0', '--ip=127.0.0.1', `--notebook-dir=${root}`,
        '--NotebookApp.token=', '--NotebookApp.password=',
        // The page is not one of the server's templates, so it has no _xsrf cookie to echo.
        '--NotebookApp.disable_check_xsrf=True',
        `--NotebookApp.extra_static_paths=${statics}`,
        ...(process.getuid?.() === 0 ? ['--allow-root'] : []), // CI containers run as root
      ],
      { env: { ...jenv.env, IPYTHONDIR: path.join(jenv.dir, 'ipython') }, cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    server.stdout?.on('data', (d: Buffer) => (serverLog += d.toString()));
    server.stderr?.on('data', (d: Buffer) => (serverLog += d.toString()));
    server.on('exit', (code, signal) => (serverExit = `notebook server exited (${code ?? signal})\n${serverLog.slice(-3000)}`));
    await waitFor('notebook server', async () => ((await fetch(`${origin}/api/status`)).ok ? true : undefined), SERVER_UP_MS, () => serverExit);
    stamp('server up');

    b = await launch({ allow: (url) => url.startsWith(`${origin}/`) });
    await b.page.goto(`${origin}/static/hopscope-live.html`);
    await b.page.waitForFunction('window.hopscopeLive !== undefined', undefined, WAIT);
    const started = (await b.page.evaluate(`window.hopscopeLive.start('hopscope')`)) as { kernelId: string; implementation: string };
    assert.equal(started.implementation, 'hopscope');
    stamp('kernel connected');
  }, STEP);

  after(async () => {
    // The page's own session first, then kernels, browser and server (stopJupyter).
    await b?.page.evaluate('window.hopscopeLive && window.hopscopeLive.shutdown()').catch(() => {});
    await stopJupyter({ origin, serverExited: serverExit !== null, browser: b, server, runtimeDir });
    stamp('cleaned up');
  }, STEP);

  test('a cell on the teaching model displays a layer-switch view that the page draws', STEP, async () => {
    const load = await execute(`%load teaching --data ${JSON.stringify(DATA)} --as model`);
    assert.match(load.outputs.map((o) => o.text ?? '').join(''), /loaded teaching/);
    // One type, so the seeded sample of 2 entities always has a same-type donor pair (issue 14: `limit` samples).
    const xp = await execute(
      `%crosspatch --layers 0-5 --limit 2 --types celebs --donors same --max-new-tokens 4 --set donorsPerTarget=1 --set identifiedOnly=false --as xp`,
    );
    assert.equal(xp.widgets.length, 1, 'one widget displayed');
    modelId = xp.widgets[0];
    stamp('sweep done');
    // The sweep's final `set` left the kernel before the execute reply; the view draws it within its throttle.
    await page().waitForFunction(
      `(() => { const w = document.querySelector('${liveView()} .hopscope-widget');
        return w && w.dataset.hsStatus === 'ready' && w.querySelector('.hs-title').textContent === 'cross-patch'; })()`,
      undefined,
      WAIT,
    );
    const drawn = await plotInfo(liveView());
    const kernelSide = JSON.parse(stdout(await execute(`console.log(JSON.stringify({ id: hs.widgets.list().map((w) => w.id), summary: xp.summary }))`))) as {
      id: string[];
      summary: { donorFraction: number[]; targetFraction: number[] };
    };
    assert.deepEqual(kernelSide.id, [modelId], 'the page drew the kernel’s widget');
    assert.deepEqual(drawn.x, LAYERS);
    assert.deepEqual(drawn.donor, kernelSide.summary.donorFraction);
    assert.deepEqual(drawn.target, kernelSide.summary.targetFraction);
    assert.ok(drawn.draws >= 1);
  });

  test('a kernel-side update (binary buffer) redraws the view in the page', STEP, async () => {
    assert.ok(modelId, 'the view exists');
    const before = await plotInfo(liveView());
    await execute(`{
      const w = hs.widgets.list().find((x) => x.id === ${JSON.stringify(modelId)})!;
      w.set({ title: 'kernel update', data: { ...(w.get('data') as object), donorFraction: new Float32Array(${JSON.stringify(UPDATED)}) } });
    }`);
    await page().waitForFunction(
      `(() => { const w = document.querySelector('${liveView()} .hopscope-widget');
        const gd = w.querySelector('.hs-plot-layer-switch');
        return w.querySelector('.hs-title').textContent === 'kernel update' && w.dataset.hsStatus === 'ready'
          && JSON.stringify(Array.from(gd.data[0].y)) === ${JSON.stringify(JSON.stringify(UPDATED))}; })()`,
      undefined,
      WAIT,
    );
    const after = await plotInfo(liveView());
    assert.deepEqual(after.donor, UPDATED);
    const kinds = await page().evaluate(`Promise.all([
      window.hopscopeLive.valueKind(${JSON.stringify(modelId)}, ['data', 'donorFraction']),
      window.hopscopeLive.valueKind(${JSON.stringify(modelId)}, ['data', 'targetFraction'])])`);
    assert.deepEqual(kinds, ['DataView', 'Array'], 'the typed array crossed the server as a binary frame, the rest as JSON');
    assert.deepEqual(after.target, before.target, 'the other trace kept its values');
    assert.ok(after.draws > before.draws, `redrawn (${before.draws} → ${after.draws} draws)`);
    // The points moved on screen too: plotly's scatter points for the donor trace sit at the new heights.
    const heights = (await page().evaluate(`(() => {
      const gd = document.querySelector('${liveView()} .hs-plot-layer-switch');
      const ya = gd._fullLayout.yaxis;
      return Array.from(gd.querySelectorAll('.scatterlayer .trace')[0].querySelectorAll('.point')).map((p) => {
        const m = /translate\\(([-\\d.]+),\\s*([-\\d.]+)\\)/.exec(p.getAttribute('transform'));
        return Number(ya.p2l(Number(m[2])).toFixed(3));
      });
    })()`)) as number[];
    assert.deepEqual(heights, UPDATED);
  });

  test('a mouse click on a layer reaches the kernel, which runs that patch and shows its answer', STEP, async () => {
    assert.ok(modelId, 'the view exists');
    // A kernel-side record of what the widget receives, beside the magic's own run-cell listener.
    await execute(`const clicks: Record<string, unknown>[] = [];
hs.widgets.list().find((x) => x.id === ${JSON.stringify(modelId)})!.on('custom', (c) => { clicks.push(c); });`);
    await clickLayer(page(), `document.querySelector('${liveView()} .hs-plot-layer-switch')`, CLICKED_LAYER);
    await page().waitForFunction(
      `(() => { const t = document.querySelector('${liveView()} .hs-answer-text');
        return t && !t.closest('[hidden]') && t.textContent !== 'running…'; })()`,
      undefined,
      WAIT,
    );
    stamp('click answered');
    const shown = await plotInfo(liveView());
    assert.equal(shown.answerHead, `layer ${CLICKED_LAYER}`);
    assert.ok(shown.answerText && !shown.answerText.startsWith('failed'), `answer: ${shown.answerText}`);
    const details = JSON.parse(shown.details ?? '{}') as { summary?: { layers?: number[] } };
    assert.deepEqual(details.summary?.layers, [CLICKED_LAYER], 'the kernel ran the clicked layer only');

    // Kernel side: the click arrived as a run-cell message, and the same single patch run here gives the
    // answer the page shows.
    const check = JSON.parse(
      stdout(
        await execute(`{
  const one = await hs.runExperiment({ ...xp.spec, layers: [${CLICKED_LAYER}] }, { model, data: await hs.loadDataset(${JSON.stringify(DATA)}) });
  console.log(JSON.stringify({ clicks, answer: one.summary.answer }));
}`),
      ),
    ) as { clicks: Record<string, unknown>[]; answer: string };
    assert.deepEqual(check.clicks, [{ type: 'run-cell', view: 'layer-switch', layer: CLICKED_LAYER }]);
    assert.equal(shown.answerText, check.answer);
  });

  test('a second connection restores the view from the kernel over the control comm', STEP, async () => {
    assert.ok(modelId, 'the view exists');
    // Every step of the restore is bounded in the page (widgets/src/live/index.ts), so a stuck one fails here
    // with its name and the server's log instead of timing the whole test out.
    const r = (await page()
      .evaluate(`window.hopscopeLive.restore([${JSON.stringify(modelId)}])`)
      .catch((e: unknown) => assert.fail(`restore: ${e instanceof Error ? e.message : String(e)}\n${context()}`))) as RestoreResult;
    stamp(`restored (steps ${JSON.stringify(r.steps)} ms; ${r.attempts} connection(s), ${r.kernelInfoRequests} kernel_info request(s))`);
    const { steps: _steps, kernelInfoRequests, attempts, ...shown } = r;
    assert.deepEqual(shown, { restored: [modelId], viaControlComm: true, commInfo: [modelId], failures: [] });
    assert.ok(kernelInfoRequests >= 1 && attempts >= 1, 'the second connection got its kernel_info');
    const host = `.live-restored[data-model-id="${modelId}"]`;
    await page().waitForFunction(`document.querySelector('${host} .hopscope-widget')?.dataset.hsStatus === 'ready'`, undefined, WAIT);
    const restored = await plotInfo(host);
    assert.equal(restored.title, 'kernel update');
    assert.deepEqual(restored.donor, UPDATED, 'the binary update came back through update_states');
    assert.deepEqual(
      b?.errors,
      [],
      'no page errors',
    );
    assert.deepEqual(b?.blocked, []);
    // The kernel logs what it rejects or cannot route (bad signatures, unknown comms or message types) to the
    // server's stderr: a clean protocol run logs none of that.
    const complaints = serverLog.split('\n').filter((l) => /^\[hopscope kernel/.test(l) && !/ listening \(pid/.test(l));
    assert.deepEqual(complaints, [], 'kernel log');
  });
});
