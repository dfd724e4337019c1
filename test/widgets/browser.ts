// Headless Chromium for the widget tests (Debian's /usr/bin/chromium driven by playwright-core; playwright
// never downloads a browser here) with every network request blocked, plus screenshot checks.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

const ROOT = path.resolve(__dirname, '../..');
export const STATIC_BUNDLE = path.join(ROOT, 'widgets/dist/static.js');

export function chromiumPath(): string | null {
  const p = process.env.HOPSCOPE_CHROMIUM ?? '/usr/bin/chromium';
  return fs.existsSync(p) ? p : null;
}

/** Skip reason when the browser is not installed (the tests need `apt-get install chromium`). */
export function browserSkip(): string | false {
  return chromiumPath() ? false : 'chromium not found (apt-get install -y chromium, or set HOPSCOPE_CHROMIUM)';
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

export const LIVE_BUNDLE = path.join(ROOT, 'widgets/dist/live.js');

function widgetSourcesMtime(): number {
  return Math.max(newestMtime(path.join(ROOT, 'widgets/src')), fs.statSync(path.join(ROOT, 'src/report/views.ts')).mtimeMs);
}

/** Runs `widgets/scripts/build.js <step>` when `output` is missing or older than the widget sources (esbuild, ~2–4 s). */
function ensureBuilt(output: string, step: string): void {
  if (fs.existsSync(output) && fs.statSync(output).mtimeMs >= widgetSourcesMtime()) return;
  const r = spawnSync(process.execPath, [path.join(ROOT, 'widgets/scripts/build.js'), step], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building ${path.relative(ROOT, output)} failed:\n${r.stdout}\n${r.stderr}`);
}

/** Builds widgets/dist/static.js when it is missing or older than its sources (esbuild, ~2 s). */
export function ensureStaticBundle(): void {
  ensureBuilt(STATIC_BUNDLE, 'static');
}

/** Builds widgets/dist/live.js (the live round-trip page: @jupyterlab/services + html-manager) when stale. */
export function ensureLiveBundle(): void {
  ensureBuilt(LIVE_BUNDLE, 'live');
}

/**
 * The one bound on any wait of a widget test (navigation, page ready, widget drawn, a download): generous,
 * because every wait ends on an event or a condition, and only a real failure reaches it. 30 s (playwright's
 * default) was not enough for a ~6 MB self-contained page on a loaded 2-core runner (issue 17).
 */
export const WIDGET_WAIT_MS = 180_000;

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Uncaught page errors and console errors. */
  errors: string[];
  /** Requests that tried to leave the machine (all are blocked). */
  blocked: string[];
  tmp: string;
  close(): Promise<void>;
}

/** `allow`: URLs that may be requested besides file:, data: and blob: (the live test's local Jupyter server). */
export async function launch(opts: { allow?: (url: string) => boolean } = {}): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error('chromium not found');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-widgets-'));
  const context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1200, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  context.setDefaultTimeout(WIDGET_WAIT_MS);
  context.setDefaultNavigationTimeout(WIDGET_WAIT_MS);
  const errors: string[] = [];
  const blocked: string[] = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:') || url.startsWith('data:') || url.startsWith('blob:') || opts.allow?.(url)) return route.continue();
    blocked.push(url);
    return route.abort();
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}\n${e.stack ?? ''}`.trimEnd()));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  return {
    context,
    page,
    errors,
    blocked,
    tmp,
    async close() {
      await context.close();
      // Keep the screenshots for inspection; the pages (~7 MB each) and the profile go.
      fs.rmSync(path.join(tmp, 'profile'), { recursive: true, force: true });
      for (const f of fs.readdirSync(tmp)) if (f.endsWith('.html') || f.endsWith('.ipynb')) fs.rmSync(path.join(tmp, f));
    },
  };
}

/** Opens an HTML page from disk and waits until every hopscope widget has finished drawing. */
export async function openPage(b: Browser, html: string, name: string): Promise<string> {
  const file = path.join(b.tmp, `${name}.html`);
  fs.writeFileSync(file, html);
  // The page is self-contained (no subresources to wait for): its parsed DOM, then the bundle's own ready
  // promise, then every widget out of 'drawing'. No fixed sleeps anywhere.
  await b.page.goto(`file://${file}`, { waitUntil: 'domcontentloaded' });
  await b.page.waitForFunction('window.hopscopeStatic !== undefined');
  await b.page.evaluate('window.hopscopeStatic.ready');
  await waitSettled(b.page);
  return file;
}

/**
 * A real mouse click on a layer-switch chart's donor point at `layer`; `plot` is a page expression giving the
 * chart's element. Plotly takes a click as hover + mouse down/up on the same spot.
 */
export async function clickLayer(page: Page, plot: string, layer: number): Promise<void> {
  const point = (await page.evaluate(`(() => {
    const gd = ${plot};
    gd.scrollIntoView({ block: 'center' });
    const fl = gd._fullLayout, box = gd.getBoundingClientRect();
    const i = gd.data[0].x.indexOf(${layer});
    return { x: box.left + fl._size.l + fl.xaxis.l2p(${layer}), y: box.top + fl._size.t + fl.yaxis.l2p(gd.data[0].y[i]) };
  })()`)) as { x: number; y: number };
  await page.mouse.move(point.x - 2, point.y);
  await page.mouse.move(point.x, point.y);
  await page.mouse.click(point.x, point.y);
}

/** Every widget out of the 'drawing' state (ready, invalid, error or waiting). */
export async function waitSettled(page: Page): Promise<void> {
  await page.waitForFunction(
    `Array.from(document.querySelectorAll('.hopscope-widget')).every((e) => e.dataset.hsStatus && e.dataset.hsStatus !== 'drawing')`,
    undefined,
    { timeout: WIDGET_WAIT_MS },
  );
}

export interface PixelStats {
  width: number;
  height: number;
  colours: number;
  /** Share of pixels that differ from the most common colour. */
  inked: number;
}

/** How much is drawn in a screenshot: distinct colours (quantised) and the share of non-background pixels. */
export function pixelStats(png: Buffer): PixelStats {
  const img = PNG.sync.read(png);
  const counts = new Map<number, number>();
  for (let i = 0; i < img.data.length; i += 4) {
    const key = ((img.data[i] >> 3) << 10) | ((img.data[i + 1] >> 3) << 5) | (img.data[i + 2] >> 3);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const total = img.width * img.height;
  const top = Math.max(...counts.values());
  return { width: img.width, height: img.height, colours: counts.size, inked: 1 - top / total };
}

export const LABEXTENSION = path.join(ROOT, 'widgets/labextension');

/** Builds widgets/labextension (esbuild lib + build-labextension) when missing or older than its sources. */
export function ensureLabextension(): void {
  ensureBuilt(path.join(LABEXTENSION, 'package.json'), 'labextension');
}
