// hopscope in a real JupyterLab 4 page (issue 16). The application is test/lab-harness: the npm @jupyterlab/*
// packages and @jupyter-widgets/jupyterlab-manager bundled by its own build (pinned by its package-lock.json),
// served by Debian's jupyter_server 1.23 / jupyterlab_server 2.16. The hopscope kernel and widget extension are
// installed by `hopscope install --prefix` into a private Jupyter path, as for a user; the page loads the widget
// extension as a prebuilt (federated) extension. Headless Chromium then does what a newcomer does, with the
// keyboard and the mouse: open a notebook, run `%load teaching` and `%crosspatch`, watch the view draw while the
// sweep runs, click a layer and read that single patch's answer, complete `hs.` and a magic option with Tab,
// save, reload with no kernel behind the old view, and see the view drawn from the saved notebook. Then the
// same notebook in Jupyter Notebook 7's page (the harness's second entry): the saved view, a new sweep, a click.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PYTHON, REPO, makeJupyterEnv, tempDir } from '../kernel/jupyter-env';
import { WIDGET_WAIT_MS, browserSkip, clickLayer, ensureLabextension, launch, type Browser } from './browser';
import { freePort, stopJupyter, waitFor } from './servers';
import { TEACHING_DIR } from '../../src/data/teaching-models';
import { TEACHING_LAYERS } from '../teaching-layers';

const HARNESS = path.join(REPO, 'test', 'lab-harness');
const TEACHING = path.join(TEACHING_DIR, 'config.json');
const WIDGET_VIEW_MIME = 'application/vnd.jupyter.widget-view+json';
const WIDGET_STATE_MIME = 'application/vnd.jupyter.widget-state+json';
const CLICKED_LAYER = 3;
/** Per step: generous for a loaded 2-core runner; every wait inside ends on a condition. */
const STEP = { timeout: 300_000 };
const WAIT = { timeout: WIDGET_WAIT_MS };
/**
 * Requests this page makes that Debian's jupyter_server 1.23 cannot answer: JupyterLab 4 asks for the identity
 * (/api/me) and event (/api/events/subscribe) APIs of jupyter_server 2, and falls back without them (an
 * anonymous user, no server events). Anything else that fails is a finding.
 */
const KNOWN_MISSING = [/\/api\/me(\?|$)/, /\/api\/events\/subscribe(\?|$)/];
/**
 * What Notebook 7's page may log that is not ours: @jupyterlab/shortcuts-extension 4.6 listens to every plugin's
 * settings change before its own settings are in the registry, and on this page the document manager reloads
 * its settings (forceTransform, as widget factories are added) in that window, so the listener reads
 * `registry.plugins['@jupyterlab/shortcuts-extension:shortcuts'].schema` of undefined (once; the shortcuts load
 * right after, and Shift+Enter runs the cells below).
 */
const KNOWN_NOTEBOOK7 = [/^pageerror: Cannot read properties of undefined \(reading 'schema'\)/];

/** Page errors that are findings: the console's echo of the KNOWN_MISSING requests (checked as requests) is not. */
function unexpectedErrors(errors: readonly string[], known: readonly RegExp[] = []): string[] {
  return errors.filter(
    (e) => !/Failed to load resource: the server responded with a status of 404/.test(e) && !/api\/events\/subscribe/.test(e) && !known.some((re) => re.test(e)),
  );
}

function harnessMissing(): string | false {
  const r = spawnSync(PYTHON, ['-c', 'import jupyter_server, jupyterlab_server'], { encoding: 'utf8' });
  if (r.status !== 0) return `${PYTHON} has no jupyter_server/jupyterlab_server (apt-get install python3-jupyter-server python3-jupyterlab-server)`;
  if (!fs.existsSync(path.join(HARNESS, 'node_modules', '@jupyterlab', 'application'))) {
    return 'test/lab-harness has no node_modules (scripts/test.sh runs `npm ci` there; or run it yourself)';
  }
  return false;
}

const skip = browserSkip() || harnessMissing() || (fs.existsSync(TEACHING) ? false : `the teaching model is not built (${TEACHING_DIR})`);

interface CellInfo {
  prompt: string;
  text: string;
  widget: { status: string; draws: number; x: number[]; donor: number[]; target: number[] } | null;
}

describe('JupyterLab 4: the README’s first steps in the real UI', { skip: skip || undefined }, () => {
  let server: ChildProcess | null = null;
  let serverLog = '';
  let serverExit: string | null = null;
  let origin = '';
  let root = '';
  let runtimeDir = '';
  let b: Browser | null = null;
  const failedRequests: string[] = [];
  let drawnBefore: CellInfo | null = null;
  /** What the JupyterLab page logged (the Notebook 7 page's own are checked in its test). */
  let labErrors: string[] | null = null;
  let modelId = '';
  const t0 = Date.now();
  const stamp = (what: string) => process.stdout.write(`jupyterlab: ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  const context = () => `server log:\n${serverLog.slice(-3000)}\npage errors: ${JSON.stringify(b?.errors ?? [])}`;
  const page = () => {
    assert.ok(b, 'browser started');
    return b.page;
  };

  /** The notebook's i-th cell as the user sees it: prompt, output text, and its hopscope view if any. */
  const cell = async (i: number): Promise<CellInfo> =>
    (await page().evaluate(`(() => {
      const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[${i}];
      if (!c) return null;
      const w = c.querySelector('.hopscope-widget');
      const gd = w && w.querySelector('.hs-plot-layer-switch');
      const data = (gd && gd.data) || [];
      return {
        prompt: c.querySelector('.jp-InputPrompt').textContent.trim(),
        text: (c.querySelector('.jp-OutputArea') || { innerText: '' }).innerText,
        widget: w ? { status: w.dataset.hsStatus, draws: Number(w.dataset.hsDraws || 0),
          x: data[0] ? Array.from(data[0].x) : [], donor: data[0] ? Array.from(data[0].y) : [], target: data[1] ? Array.from(data[1].y) : [] } : null,
      };
    })()`)) as CellInfo;
  const cellCount = async () => (await page().evaluate(`document.querySelectorAll('.jp-Notebook .jp-Cell').length`)) as number;
  const finished = (i: number) =>
    page().waitForFunction(
      `(() => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[${i}];
        return c && /^\\[\\d+\\]:$/.test(c.querySelector('.jp-InputPrompt').textContent.trim()); })()`,
      undefined,
      WAIT,
    );
  /** Types code into the active cell (as pasted text, so the editor's bracket closing leaves it alone) and runs it. */
  const runCell = async (code: string): Promise<number> => {
    const i = (await cellCount()) - 1;
    await page().keyboard.insertText(code);
    await page().keyboard.press('Shift+Enter');
    return i;
  };
  const kernelIdle = () =>
    page().waitForFunction(
      `(() => { const w = window.hopscopeLab.shell.currentWidget;
        const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
        return k && k.status === 'idle' && k.connectionStatus === 'connected'; })()`,
      undefined,
      WAIT,
    );
  /** Waits until cell i's hopscope view has drawn its final data. */
  const viewReady = (i: number) =>
    page().waitForFunction(
      `document.querySelectorAll('.jp-Notebook .jp-Cell')[${i}].querySelector('.hopscope-widget')?.dataset.hsStatus === 'ready'`,
      undefined,
      WAIT,
    );
  /** Clicks layer CLICKED_LAYER of cell i's layer-switch chart and returns the answer the view then shows. */
  const clickForAnswer = async (i: number) => {
    const c = `document.querySelectorAll('.jp-Notebook .jp-Cell')[${i}]`;
    await clickLayer(page(), `${c}.querySelector('.hs-plot-layer-switch')`, CLICKED_LAYER);
    await page().waitForFunction(`(() => { const t = ${c}.querySelector('.hs-answer-text'); return t && !t.closest('[hidden]') && t.textContent !== 'running…'; })()`, undefined, WAIT);
    return (await page().evaluate(`(() => {
      const c = ${c};
      return { head: c.querySelector('.hs-answer-head').textContent, text: c.querySelector('.hs-answer-text').textContent,
        details: (c.querySelector('.hs-answer pre') || { textContent: '{}' }).textContent };
    })()`)) as { head: string; text: string; details: string };
  };
  /** The kernel's kernel_info reply status, through JupyterLab's own kernel client in the page. */
  const kernelInfo = async (id: string) =>
    (await page().evaluate(`(async () => {
      const k = window.hopscopeLab.serviceManager.kernels.connectTo({ model: { id: '${id}', name: 'hopscope' } });
      try { return (await k.info).status; } finally { k.dispose(); }
    })()`)) as string;
  const openNotebook = async (url = `${origin}/lab/tree/t.ipynb`) => {
    await page().goto(url);
    await page().waitForFunction(`document.body.dataset.hopscopeLab === 'ready'`, undefined, WAIT);
    await page().waitForSelector('.jp-Notebook .jp-Cell', WAIT);
    await kernelIdle();
  };

  before(async () => {
    ensureLabextension();
    const built = spawnSync(process.execPath, [path.join(HARNESS, 'build.js')], { cwd: HARNESS, encoding: 'utf8' });
    assert.equal(built.status, 0, `building the JupyterLab harness failed:\n${built.stdout}\n${built.stderr}`);
    const jenv = makeJupyterEnv(); // kernelspec + labextension, by `hopscope install --prefix`
    assert.ok(fs.existsSync(path.join(jenv.env.JUPYTER_PATH ?? '', 'labextensions', 'hopscope-widgets', 'package.json')), 'widget extension installed');
    runtimeDir = jenv.env.JUPYTER_RUNTIME_DIR ?? '';
    root = tempDir('hopscope-lab-');
    const notebook = {
      nbformat: 4,
      nbformat_minor: 5,
      metadata: { kernelspec: { name: 'hopscope', display_name: 'TypeScript (hopscope)', language: 'typescript' } },
      cells: [{ cell_type: 'code', id: 'first', source: '', metadata: {}, outputs: [], execution_count: null }],
    };
    fs.writeFileSync(path.join(root, 't.ipynb'), JSON.stringify(notebook));
    const port = await freePort();
    origin = `http://127.0.0.1:${port}`;
    server = spawn(
      PYTHON,
      [
        path.join(HARNESS, 'server.py'), '--no-browser', `--port=${port}`, '--port-retries=0', '--ip=127.0.0.1',
        `--ServerApp.root_dir=${root}`, '--ServerApp.token=', '--ServerApp.password=',
        // The test shuts the kernel down through the REST API, without the page's _xsrf cookie.
        '--ServerApp.disable_check_xsrf=True',
        ...(process.getuid?.() === 0 ? ['--allow-root'] : []),
      ],
      {
        env: { ...jenv.env, IPYTHONDIR: path.join(jenv.dir, 'ipython'), HOPSCOPE_LAB_STATE: path.join(jenv.dir, 'lab-state') },
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    server.stdout?.on('data', (d: Buffer) => (serverLog += d.toString()));
    server.stderr?.on('data', (d: Buffer) => (serverLog += d.toString()));
    server.on('exit', (code, signal) => (serverExit = `server exited (${code ?? signal})\n${serverLog.slice(-3000)}`));
    await waitFor('JupyterLab server', async () => ((await fetch(`${origin}/api/status`)).ok ? true : undefined), WIDGET_WAIT_MS, () => serverExit);
    stamp('server up');
    b = await launch({ allow: (url) => url.startsWith(`${origin}/`) || url.startsWith(`ws://127.0.0.1:${port}/`) });
    b.page.on('response', (r) => {
      if (r.status() >= 400) failedRequests.push(`${r.status()} ${r.url()}`);
    });
    await openNotebook();
    stamp('notebook open, kernel idle');
  }, STEP);

  after(async () => {
    await stopJupyter({ origin, serverExited: serverExit !== null, browser: b, server, runtimeDir });
    stamp('cleaned up');
  }, STEP);

  test('%load teaching, then %crosspatch: the view draws while the sweep runs', STEP, async () => {
    await page().click('.jp-Notebook .jp-Cell .cm-content');
    const load = await runCell('%load teaching');
    await finished(load);
    const loaded = await cell(load);
    assert.match(loaded.text, new RegExp(`loaded teaching \\(llava\\): ${TEACHING_LAYERS} layers`), context());
    assert.doesNotMatch(loaded.text, /tfjs-node|TensorFlow\.js in Node/, 'no tfjs banner in the output (the engine started first)');

    const xp = await runCell('%crosspatch --limit 6 --as xp');
    // Live: a drawn view (at least one draw of partial rows) while the cell's prompt still says it runs.
    await page().waitForFunction(
      `(() => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[${xp}];
        const w = c && c.querySelector('.hopscope-widget');
        return w && Number(w.dataset.hsDraws || 0) >= 1 && c.querySelector('.jp-InputPrompt').textContent.trim() === '[*]:'; })()`,
      undefined,
      { ...WAIT, polling: 50 },
    );
    stamp('view drawn while the sweep runs');
    await finished(xp);
    await viewReady(xp);
    const done = await cell(xp);
    assert.ok(done.widget && done.widget.draws >= 2, `redrawn as rows arrived (${done.widget?.draws} draws)`);

    // What the page draws is what the kernel computed.
    const check = await runCell('console.log(JSON.stringify({ d: xp.summary.donorFraction, t: xp.summary.targetFraction }))');
    await finished(check);
    const kernelSide = JSON.parse((await cell(check)).text.trim().split('\n').pop() ?? '{}') as { d: number[]; t: number[] };
    assert.deepEqual(done.widget?.x, [...Array(TEACHING_LAYERS).keys()]);
    assert.deepEqual(done.widget?.donor, kernelSide.d);
    assert.deepEqual(done.widget?.target, kernelSide.t);
    drawnBefore = done;
  });

  test('a mouse click on a layer runs that single patch and shows its answer', STEP, async () => {
    assert.ok(drawnBefore, 'the view exists');
    const shown = await clickForAnswer(1);
    assert.equal(shown.head, `layer ${CLICKED_LAYER}`);
    assert.ok(shown.text && !shown.text.startsWith('failed'), `answer: ${shown.text}\n${context()}`);
    const details = JSON.parse(shown.details) as { summary?: { layers?: number[] } };
    assert.deepEqual(details.summary?.layers, [CLICKED_LAYER], 'the kernel ran the clicked layer only');
    stamp('click answered');
  });

  test('Tab completes hs. members and a magic option', STEP, async () => {
    // The active cell is the empty one below the last run.
    const i = (await cellCount()) - 1;
    await page().click(`.jp-Notebook .jp-Cell:nth-child(${i + 1}) .cm-content`);
    await page().keyboard.type('hs.');
    await page().keyboard.press('Tab');
    await page().waitForSelector('.jp-Completer .jp-Completer-item', WAIT);
    // JupyterLab renders the first page of a long list at once and the rest in later animation
    // frames (@jupyterlab/completer widget.js, _createCompleterNode), so wait for the names rather
    // than read the list once: typed hs offers the whole library (~200 members).
    const wanted = ['display', 'saveFigure', 'widgets'];
    const listed = `Array.from(document.querySelectorAll('.jp-Completer-item')).map((e) => e.querySelector('.jp-Completer-match').textContent.trim())`;
    await page()
      .waitForFunction(`(() => { const m = ${listed}; return ${JSON.stringify(wanted)}.every((n) => m.includes(n)); })()`, undefined, WAIT)
      .catch(() => undefined);
    const members = (await page().evaluate(listed)) as string[];
    for (const name of wanted) assert.ok(members.includes(name), `hs.${name} offered (${members.length} items: ${members.join(', ')})`);
    await page().keyboard.press('Escape');
    await page().waitForSelector('.jp-Completer', { state: 'hidden', ...WAIT });
    // Escape also left edit mode: back into the cell's editor, then clear it.
    await page().click(`.jp-Notebook .jp-Cell:nth-child(${i + 1}) .cm-content`);
    await page().keyboard.press('Control+A');
    await page().keyboard.press('Backspace');
    await page().keyboard.type('%crosspatch --lay');
    await page().keyboard.press('Tab');
    // The kernel's match (from the magic's definition) is offered; Enter takes it into the cell.
    const offered = (await (
      await page().waitForFunction(
        `(() => { const items = Array.from(document.querySelectorAll('.jp-Completer-item .jp-Completer-match')).map((e) => e.textContent.trim());
          return items.includes('--layers') ? items : null; })()`,
        undefined,
        WAIT,
      )
    ).jsonValue()) as string[];
    assert.deepEqual(offered, ['--layers']);
    await page().keyboard.press('Enter');
    const got = await page().waitForFunction(
      `(() => { const t = document.querySelectorAll('.jp-Notebook .jp-Cell')[${i}].querySelector('.cm-content').textContent;
        return t.includes('--layers') ? t : null; })()`,
      undefined,
      WAIT,
    );
    assert.equal(await got.jsonValue(), '%crosspatch --layers');
    await page().keyboard.press('Control+A');
    await page().keyboard.press('Backspace');
  });

  test('saved, reloaded with a new kernel, the notebook draws the saved view', STEP, async () => {
    assert.ok(drawnBefore, 'the view exists');
    const file = path.join(root, 't.ipynb');
    const before = fs.statSync(file).mtimeMs;
    await page().keyboard.press('Control+S');
    const saved = await waitFor(
      'the notebook saved with its widget state',
      async () => {
        if (fs.statSync(file).mtimeMs === before) return undefined;
        const nb = JSON.parse(fs.readFileSync(file, 'utf8')) as {
          cells: { outputs?: { data?: Record<string, { model_id?: string }> }[] }[];
          metadata: { widgets?: Record<string, { state: Record<string, unknown> }> };
        };
        const view = nb.cells[1].outputs?.find((o) => o.data?.[WIDGET_VIEW_MIME])?.data?.[WIDGET_VIEW_MIME]?.model_id;
        return view && nb.metadata.widgets?.[WIDGET_STATE_MIME]?.state[view] ? { nb, view } : undefined;
      },
      WIDGET_WAIT_MS,
    );
    modelId = saved.view;
    // No kernel holds the old view any more: shut every kernel down, then reload the page.
    const running = (await (await fetch(`${origin}/api/kernels`)).json()) as { id: string }[];
    assert.ok(running.length >= 1, 'a kernel was running');
    for (const k of running) assert.equal((await fetch(`${origin}/api/kernels/${k.id}`, { method: 'DELETE' })).status, 204);
    // The notebook's new kernel is started, and has answered kernel_info, before the page opens it. Why: the
    // widget manager (@jupyter-widgets/jupyterlab-manager 5.0.16) has a race a kernel that starts in ~2 s hits.
    // The saved output's first render asks get_model, which polls for 2 s (base-manager get_model) while the
    // manager restores the saved state behind the kernel's control-comm and comm_info round trips. When that
    // restore lands between the last poll and the throw, the renderer sees `restoredStatus` already true and
    // shows "Error displaying widget: model not found" for good (renderer.js renderModel). Measured with the
    // live round trip running beside it: 2 of 54 reloads with a cold kernel, 0 of 20 with a started one.
    const fresh = (await (
      await fetch(`${origin}/api/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ path: 't.ipynb', type: 'notebook', name: 't.ipynb', kernel: { name: 'hopscope' } }),
      })
    ).json()) as { kernel: { id: string } };
    assert.equal(await kernelInfo(fresh.kernel.id), 'ok', 'the new kernel answers kernel_info');
    await openNotebook();
    stamp('reloaded');
    await viewReady(1);
    const restored = await cell(1);
    assert.deepEqual(restored.widget?.x, drawnBefore.widget?.x);
    assert.deepEqual(restored.widget?.donor, drawnBefore.widget?.donor);
    assert.deepEqual(restored.widget?.target, drawnBefore.widget?.target);
    const kernels = (await (await fetch(`${origin}/api/kernels`)).json()) as { id: string }[];
    assert.ok(kernels.every((k) => !running.some((r) => r.id === k.id)), 'drawn with none of the old kernels running');
    const used = (await page().evaluate(`window.hopscopeLab.shell.currentWidget.sessionContext.session.kernel.id`)) as string;
    assert.equal(used, fresh.kernel.id, 'the page runs the new kernel, which holds no widgets: the view came from the file');
    assert.ok(modelId);
  });

  test('Jupyter Notebook 7: the saved notebook opens with its view, and a new %crosspatch draws and answers a click', STEP, async () => {
    assert.ok(drawnBefore, 'the view exists');
    // Notebook 7's own application and shell (@jupyter-notebook/application) on its notebook page, with the
    // same kernel and the same prebuilt widget extension (test/lab-harness: notebook.js, server.py).
    labErrors = [...(b?.errors ?? [])];
    await openNotebook(`${origin}/notebooks/t.ipynb`);
    stamp('Notebook 7 page open');
    assert.equal(await page().evaluate(`window.hopscopeLab.name`), 'Jupyter Notebook', 'the Notebook 7 application runs the page');
    await viewReady(1);
    const saved = await cell(1);
    assert.deepEqual(saved.widget?.donor, drawnBefore.widget?.donor, 'the saved view, drawn by Notebook 7');
    const last = (await cellCount()) - 1;
    await page().click(`.jp-Notebook .jp-Cell:nth-child(${last + 1}) .cm-content`);
    const load = await runCell('%load teaching');
    await finished(load);
    assert.match((await cell(load)).text, new RegExp(`loaded teaching \\(llava\\): ${TEACHING_LAYERS} layers`), context());
    const xp = await runCell('%crosspatch --limit 6');
    await finished(xp);
    await viewReady(xp);
    const drawn = await cell(xp);
    assert.deepEqual(drawn.widget?.x, [...Array(TEACHING_LAYERS).keys()]);
    assert.deepEqual(drawn.widget?.donor, drawnBefore.widget?.donor, 'the same sweep gives the same curve in either frontend');
    const shown = await clickForAnswer(xp);
    assert.equal(shown.head, `layer ${CLICKED_LAYER}`);
    assert.ok(shown.text && !shown.text.startsWith('failed'), `answer: ${shown.text}\n${context()}`);
    stamp('Notebook 7 view drawn and clicked');
    assert.deepEqual(unexpectedErrors((b?.errors ?? []).slice(labErrors.length), KNOWN_NOTEBOOK7), [], 'Notebook 7 page errors');
  });

  test('the JupyterLab page logged no errors beyond the server APIs Debian’s jupyter_server lacks', STEP, () => {
    const unexpected = failedRequests.filter((r) => !KNOWN_MISSING.some((re) => re.test(r)));
    assert.deepEqual(unexpected, [], 'failed requests');
    assert.deepEqual(unexpectedErrors(labErrors ?? b?.errors ?? []), [], 'page errors');
    assert.deepEqual(b?.blocked, [], 'requests that tried to leave the machine');
  });
});
