// The widget view: validates the model state, shows progress/errors, hands valid data to the renderer of its
// view kind (redrawn incrementally and throttled), exports charts, and relays clicks to the kernel.

import { DOMWidgetView } from '@jupyter-widgets/base';
import Plotly from 'plotly.js-dist-min';
import { WIDGET_STATE_KEYS, isCellResult, isViewKind, type RunCellRequest, type ViewKind } from '../../src/report/protocol';
import { validateViewState } from '../../src/report/views';
import { Frame } from './frame';
import { Throttle } from './throttle';
import { rendererFor } from './views/index';
import type { CellRequest, ViewRenderer } from './views/types';

type Status = 'drawing' | 'ready' | 'invalid' | 'error' | 'waiting';
type LuminoMessage = Parameters<DOMWidgetView['processLuminoMessage']>[0];

const REDRAW_INTERVAL_MS = 150;

export class HopscopeView extends DOMWidgetView {
  private frame: Frame | null = null;
  private renderer: ViewRenderer | null = null;
  private kind: ViewKind | null = null;
  private title = '';
  private throttle: Throttle | null = null;
  private resizer: ResizeObserver | null = null;
  private draws = 0;

  override render(): void {
    this.el.classList.add('hopscope-widget');
    this.frame = new Frame(this.el, (format) => void this.exportImages(format));
    this.setStatus('drawing');
    this.throttle = new Throttle(() => this.draw(), REDRAW_INTERVAL_MS);
    this.listenTo(this.model, WIDGET_STATE_KEYS.map((k) => `change:${k}`).join(' '), () => this.throttle?.request());
    this.listenTo(this.model, 'msg:custom', (content: unknown) => this.onCustomMessage(content));
    if (typeof ResizeObserver !== 'undefined') {
      this.resizer = new ResizeObserver(() => this.resizePlots());
      this.resizer.observe(this.frame.body);
    }
    this.throttle.request();
  }

  override processLuminoMessage(msg: LuminoMessage): void {
    super.processLuminoMessage(msg);
    if (msg.type === 'resize' || msg.type === 'after-show' || msg.type === 'after-attach') this.resizePlots();
  }

  override remove(): void {
    this.throttle?.dispose();
    this.resizer?.disconnect();
    this.disposeRenderer();
    return super.remove();
  }

  private async draw(): Promise<void> {
    const frame = this.frame;
    if (!frame) return;
    const raw: Record<string, unknown> = {};
    for (const k of WIDGET_STATE_KEYS) raw[k] = this.model.get(k);
    const result = validateViewState(raw);
    frame.setProgress(result.ok ? result.state.progress : result.progress);
    if (!result.ok) {
      const kind = result.view ?? 'hopscope';
      frame.setTitle(result.title, result.view ?? '');
      this.disposeRenderer();
      frame.setExportable(false);
      if (result.error !== null) {
        frame.showMessage('error', `The kernel reported an error: ${result.error}`, result.empty ? [] : result.problems);
        this.setStatus('error');
      } else if (result.empty) {
        frame.showMessage('info', 'Waiting for the first results…');
        this.setStatus('waiting');
      } else {
        const headline = isViewKind(result.view)
          ? `This ${kind} view cannot be drawn: its state does not match the ${kind} schema (src/report/views.ts).`
          : 'This hopscope view cannot be drawn: its state names no known view kind.';
        frame.showMessage('invalid', headline, result.problems);
        this.setStatus('invalid');
      }
      return;
    }
    const state = result.state;
    this.title = state.title;
    frame.setTitle(state.title, state.view);
    if (state.error !== null) frame.showMessage('error', `The kernel reported an error: ${state.error}`);
    else frame.clearMessage();
    try {
      if (this.kind !== state.view || !this.renderer) {
        this.disposeRenderer();
        this.kind = state.view;
        this.renderer = rendererFor(state.view)(frame.body, { plotly: Plotly, runCell: (req, label) => this.runCell(req, label) });
      }
      await this.renderer.update(state);
      frame.setExportable(true);
      this.draws += 1;
      this.el.dataset.hsDraws = String(this.draws);
      this.setStatus('ready');
    } catch (e) {
      frame.showMessage('error', `Could not draw this ${state.view} view: ${e instanceof Error ? e.message : String(e)}`);
      this.setStatus('error');
    }
  }

  private setStatus(status: Status): void {
    this.el.dataset.hsStatus = status;
  }

  private disposeRenderer(): void {
    if (!this.renderer) return;
    try {
      this.renderer.dispose();
    } finally {
      this.renderer = null;
      this.kind = null;
      this.frame?.body.replaceChildren();
    }
  }

  private runCell(req: CellRequest, label: string): void {
    const frame = this.frame;
    if (!frame || !this.kind) return;
    const msg: RunCellRequest = { type: 'run-cell', view: this.kind, ...req };
    if (!this.model.comm_live) {
      frame.showAnswer(label, 'No kernel is connected (this is a saved view). Open the notebook with the hopscope kernel and run it to compute single cells.');
      return;
    }
    const content: Record<string, string | number> = {};
    for (const [k, v] of Object.entries(msg)) if (v !== undefined) content[k] = v;
    this.send(content);
    frame.showAnswer(label, 'running…');
  }

  private onCustomMessage(content: unknown): void {
    if (!isCellResult(content) || !this.frame) return;
    const r = content.request ?? {};
    const parts = [
      typeof r.layer === 'number' ? `layer ${r.layer}` : '',
      typeof r.position === 'number' ? `position ${r.position}` : '',
      typeof r.row === 'number' ? `row ${r.row}` : '',
    ].filter(Boolean);
    this.frame.showAnswer(parts.length ? parts.join(', ') : 'result', content.answer, content.details);
  }

  private resizePlots(): void {
    for (const p of this.renderer?.plots() ?? []) {
      if (p.div.isConnected && !p.div.hidden) void Plotly.Plots.resize(p.div);
    }
  }

  private async exportImages(format: 'png' | 'svg'): Promise<void> {
    const base = slug(this.title || this.kind || 'hopscope');
    for (const p of this.renderer?.plots() ?? []) {
      if (p.div.hidden) continue;
      try {
        await Plotly.downloadImage(p.div, {
          format,
          filename: `${base}-${p.name}`,
          width: Math.max(p.div.clientWidth, 480),
          height: Math.max(p.div.clientHeight, 240),
          scale: format === 'png' ? 2 : 1,
          // A PNG with a transparent paper is hard to read in most viewers; keep it for dark themes, whose
          // light text needs the page behind it.
          setBackground: format === 'png' && !lightText(p.div) ? 'opaque' : 'transparent',
        });
      } catch (e) {
        this.frame?.showMessage('error', `Export to ${format.toUpperCase()} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
}

function lightText(node: HTMLElement): boolean {
  const m = node.ownerDocument.defaultView?.getComputedStyle(node).color.match(/\d+(\.\d+)?/g);
  if (!m || m.length < 3) return false;
  const [r, g, b] = m.map(Number);
  return 0.299 * r + 0.587 * g + 0.114 * b > 140;
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60) || 'hopscope';
}
