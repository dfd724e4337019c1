// Static renderer: draws saved widget state in a plain HTML page with no kernel and no network, using
// @jupyter-widgets/html-manager with a loader that resolves 'hopscope-widgets' to the bundled classes.
// The page holds <script type="application/vnd.jupyter.widget-state+json"> (the saved state) and one
// <script type="application/vnd.jupyter.widget-view+json"> per place a widget is shown.

import * as base from '@jupyter-widgets/base';
import { HTMLManager } from '@jupyter-widgets/html-manager/lib/htmlmanager';
import * as hopscope from '../index';
import { MODULE_NAME } from '../version';
import { ensureStyle } from '../style';

const STATE_MIME = 'application/vnd.jupyter.widget-state+json';
const VIEW_MIME = 'application/vnd.jupyter.widget-view+json';

export interface StaticRenderReport {
  views: number;
  failures: string[];
}

function loader(moduleName: string, moduleVersion: string): Promise<unknown> {
  if (moduleName === MODULE_NAME) return Promise.resolve(hopscope);
  return Promise.reject(
    new Error(`this page bundles only ${MODULE_NAME} and the standard ipywidgets; ${moduleName}@${moduleVersion} is not available offline`),
  );
}

function notice(host: HTMLElement, text: string): void {
  const box = document.createElement('div');
  box.className = 'hs-view';
  const msg = document.createElement('div');
  msg.className = 'hs-message hs-invalid';
  msg.setAttribute('role', 'alert');
  msg.textContent = text;
  box.append(msg);
  host.append(box);
  host.dataset.hsStatus = 'invalid';
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export async function renderWidgets(root: ParentNode = document): Promise<StaticRenderReport> {
  ensureStyle(document);
  const manager = new HTMLManager({ loader });
  const failures: string[] = [];
  for (const tag of Array.from(root.querySelectorAll(`script[type="${STATE_MIME}"]`))) {
    try {
      await manager.set_state(JSON.parse(tag.textContent ?? '{}'));
    } catch (e) {
      failures.push(`saved widget state could not be loaded: ${message(e)}`);
    }
  }
  const tags = Array.from(root.querySelectorAll(`script[type="${VIEW_MIME}"]`));
  await Promise.all(
    tags.map(async (tag) => {
      const host = document.createElement('div');
      host.className = 'hs-static-widget';
      tag.parentNode?.insertBefore(host, tag.nextSibling);
      let id = '?';
      try {
        const spec = JSON.parse(tag.textContent ?? '{}') as { model_id?: unknown };
        id = String(spec.model_id);
        if (typeof spec.model_id !== 'string' || !manager.has_model(spec.model_id)) {
          notice(host, `This widget's state was not saved with the page (model ${id}). Re-run the notebook with "jupyter nbconvert --to notebook --execute" (which stores widget state) and export it again.`);
          failures.push(`model ${id}: no saved state`);
          return;
        }
        const model = await manager.get_model(spec.model_id);
        const view = await manager.create_view(model);
        await manager.display_view(view, host);
      } catch (e) {
        notice(host, `This widget could not be shown (model ${id}): ${message(e)}`);
        failures.push(`model ${id}: ${message(e)}`);
      }
    }),
  );
  return { views: tags.length, failures };
}

declare global {
  interface Window {
    /** For tests and embedding: the render report, the manager class, the widget classes and the
     * @jupyter-widgets/base copy they were built against. */
    hopscopeStatic?: { ready: Promise<StaticRenderReport>; HTMLManager: typeof HTMLManager; widgets: typeof hopscope; base: typeof base };
  }
}

function start(): void {
  window.hopscopeStatic = { ready: renderWidgets(document), HTMLManager, widgets: hopscope, base };
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
