// The chrome around every view: title and export buttons, progress bar, message box, body, answer panel.
// The view fills `body`; everything else is driven from the widget state and the kernel's replies.

import type { Progress } from '../../src/report/protocol';
import { clear, el } from './dom';
import { ensureStyle } from './style';

export type MessageKind = 'error' | 'invalid' | 'info';

export class Frame {
  readonly root: HTMLDivElement;
  readonly body: HTMLDivElement;
  private readonly title: HTMLSpanElement;
  private readonly kind: HTMLSpanElement;
  private readonly progress: HTMLDivElement;
  private readonly progressFill: HTMLDivElement;
  private readonly progressText: HTMLSpanElement;
  private readonly message: HTMLDivElement;
  private readonly answer: HTMLDivElement;
  private readonly exportButtons: HTMLButtonElement[];

  constructor(host: HTMLElement, onExport: (format: 'png' | 'svg') => void) {
    ensureStyle(host.ownerDocument);
    this.title = el('span', { className: 'hs-title' });
    this.kind = el('span', { className: 'hs-kind' });
    this.exportButtons = (['png', 'svg'] as const).map((format) => {
      const b = el('button', {
        className: `hs-button hs-export-${format}`,
        text: format.toUpperCase(),
        title: `Download the chart(s) as ${format.toUpperCase()}`,
        attrs: { type: 'button' },
      });
      b.addEventListener('click', () => onExport(format));
      return b;
    });
    this.progressFill = el('div', { className: 'hs-progress-fill' });
    this.progressText = el('span', { className: 'hs-progress-text' });
    this.progress = el('div', { className: 'hs-progress', attrs: { role: 'progressbar' } }, [
      el('div', { className: 'hs-progress-track' }, [this.progressFill]),
      this.progressText,
    ]);
    this.progress.hidden = true;
    this.message = el('div', { className: 'hs-message', attrs: { role: 'alert' } });
    this.message.hidden = true;
    this.body = el('div', { className: 'hs-body' });
    this.answer = el('div', { className: 'hs-answer', attrs: { 'aria-live': 'polite' } });
    this.answer.hidden = true;
    this.root = el('div', { className: 'hs-view' }, [
      el('div', { className: 'hs-header' }, [this.title, this.kind, ...this.exportButtons]),
      this.progress,
      this.message,
      this.body,
      this.answer,
    ]);
    host.appendChild(this.root);
  }

  setTitle(title: string, kind: string): void {
    this.title.textContent = title || kind || 'hopscope view';
    this.kind.textContent = title && kind ? kind : '';
  }

  setExportable(on: boolean): void {
    for (const b of this.exportButtons) b.hidden = !on;
  }

  setProgress(p: Progress | null): void {
    this.progress.hidden = p === null;
    if (!p) return;
    const frac = p.total > 0 ? p.done / p.total : 0;
    this.progressFill.style.width = `${(100 * frac).toFixed(1)}%`;
    this.progressText.textContent = p.done >= p.total ? `done (${p.total})` : `${p.done} / ${p.total}`;
    this.progress.setAttribute('aria-valuenow', String(p.done));
    this.progress.setAttribute('aria-valuemax', String(p.total));
  }

  /** Show a message; `lines` become a bulleted list under the headline. */
  showMessage(kind: MessageKind, headline: string, lines: string[] = []): void {
    clear(this.message);
    this.message.className = `hs-message hs-${kind}`;
    this.message.append(el('div', { text: headline }));
    if (lines.length > 0) this.message.append(el('ul', {}, lines.map((l) => el('li', {}, [el('code', { text: l })]))));
    this.message.hidden = false;
  }

  clearMessage(): void {
    clear(this.message);
    this.message.hidden = true;
  }

  showAnswer(headline: string, text: string, details?: unknown): void {
    clear(this.answer);
    this.answer.append(el('div', { className: 'hs-answer-head', text: headline }));
    if (text) this.answer.append(el('div', { className: 'hs-answer-text', text }));
    if (details !== undefined && details !== null) {
      const pre = el('pre', { text: typeof details === 'string' ? details : safeJson(details) });
      this.answer.append(el('details', {}, [el('summary', { text: 'details' }), pre]));
    }
    this.answer.hidden = false;
  }
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v, null, 2);
  } catch {
    return String(v);
  }
}
