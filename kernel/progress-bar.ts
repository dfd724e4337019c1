// A progress bar for library calls made in cells (issue 16): `await hs.runExperiment(...)` shows one output that
// updates in place, as tqdm.notebook does under ipykernel: display_data with a display_id, then
// update_display_data to that id. Frontends that render HTML draw a <progress>; text/plain is the fallback
// (nbconvert's text exports, consoles). The last update says how it ended, so a saved notebook keeps that line.
import { randomUUID } from 'node:crypto';
import type { ProgressEvent } from './library';
import { esc } from './rich-output';

export type PublishDisplay = (msgType: 'display_data' | 'update_display_data', content: Record<string, unknown>) => void;

/** At most one update per interval: an experiment reports every generated batch, hundreds per run. */
export const PROGRESS_INTERVAL_MS = 250;

export class ProgressBar {
  readonly displayId = randomUUID();
  private readonly started: number;
  private lastSent = -Infinity;
  private latest: ProgressEvent = { done: 0, total: 0, message: 'starting' };
  private ended = false;

  constructor(
    private readonly publish: PublishDisplay,
    private readonly label: string,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.started = now();
    this.send('display_data', this.bundle(this.latest, null));
  }

  update(ev: ProgressEvent): void {
    if (this.ended) return;
    this.latest = ev;
    const t = this.now();
    // A phase's last step is always shown, so the bar never stops short of what ran.
    if (t - this.lastSent < PROGRESS_INTERVAL_MS && ev.done < ev.total) return;
    this.send('update_display_data', this.bundle(ev, null));
  }

  /** The final line: how long it took, or where it stopped and why. */
  finish(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    const s = ((this.now() - this.started) / 1000).toFixed(1);
    const why = error === undefined ? null : error instanceof Error ? error.message.split('\n')[0] : String(error);
    this.send('update_display_data', this.bundle(this.latest, why === null ? `done in ${s} s` : `stopped after ${s} s: ${why}`));
  }

  private send(msgType: 'display_data' | 'update_display_data', data: Record<string, string>): void {
    this.lastSent = this.now();
    this.publish(msgType, { data, metadata: {}, transient: { display_id: this.displayId } });
  }

  private bundle(ev: ProgressEvent, end: string | null): Record<string, string> {
    const steps = ev.total > 0 ? `${ev.done}/${ev.total}` : '';
    const text = [`${this.label}:`, ev.message ?? '', steps].filter((p) => p !== '').join(' ') + (end ? ` (${end})` : '');
    const bar = ev.total > 0 ? `<progress value="${ev.done}" max="${ev.total}" style="width: 16em; vertical-align: middle"></progress> ` : '';
    return { 'text/plain': text, 'text/html': `<div class="hopscope-progress">${bar}<span>${esc(text)}</span></div>` };
  }
}
