// Helpers for views with a token-position axis: where the image span lies, and a layer picker.

import type { PositionInfo } from '../../../src/report/views';
import { el } from '../dom';

/** Contiguous runs of image positions, as [first, last] index pairs. */
export function imageSpans(positions: PositionInfo[]): [number, number][] {
  const spans: [number, number][] = [];
  positions.forEach((p, i) => {
    if (p.kind !== 'image') return;
    const last = spans[spans.length - 1];
    if (last && last[1] === i - 1) last[1] = i;
    else spans.push([i, i]);
  });
  return spans;
}

/**
 * A band above the plot marking the image columns on the x axis: image positions, or on a site axis (the
 * circuit's) the sites of the image run.
 */
export function imageSpanShapes(positions: PositionInfo[], what = 'image positions'): { shapes: Record<string, unknown>[]; annotations: Record<string, unknown>[] } {
  const spans = imageSpans(positions);
  return {
    shapes: spans.map(([a, b]) => ({
      type: 'rect', xref: 'x', yref: 'paper', x0: a - 0.5, x1: b + 0.5, y0: 1.0, y1: 1.03,
      fillcolor: 'rgba(217, 58, 106, 0.6)', line: { width: 0 },
    })),
    annotations: spans.slice(0, 1).map(([a, b]) => ({
      xref: 'x', yref: 'paper', x: (a + b) / 2, y: 1.03, text: `${what} (${b - a + 1}${spans.length > 1 ? '+' : ''})`,
      showarrow: false, yanchor: 'bottom', font: { size: 10 },
    })),
  };
}

/**
 * Tick labels for a position axis: every label when few, else a subset. Token labels are short; a site axis
 * (the circuit's "VLM·image mlp entity-last", two dozen columns) needs its whole label to be read, so few
 * columns get longer labels.
 */
export function positionTicks(positions: PositionInfo[], maxLength = positions.length <= 32 ? 26 : 10): { tickvals: number[]; ticktext: string[] } {
  const step = Math.max(1, Math.ceil(positions.length / 28));
  const tickvals: number[] = [];
  const ticktext: string[] = [];
  positions.forEach((p, i) => {
    const last = i === positions.length - 1 && i - (tickvals[tickvals.length - 1] ?? -step) >= step / 2;
    if (i % step !== 0 && !last) return;
    tickvals.push(i);
    ticktext.push(truncate(p.label, maxLength));
  });
  return { tickvals, ticktext };
}

export function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** A <select> of layers that keeps the user's choice across redraws. */
export class LayerPicker {
  readonly select: HTMLSelectElement;
  private key = '';
  private touched = false;

  constructor(parent: HTMLElement, label: string, onChange: () => void) {
    this.select = el('select', { attrs: { 'aria-label': label } });
    parent.append(el('label', { text: `${label}: ` }, [this.select]));
    this.select.addEventListener('change', () => {
      this.touched = true;
      onChange();
    });
  }

  /** Offer these layers; until the user picks one, follow `preferred`. Returns the index chosen. */
  sync(layers: number[], preferred: number): number {
    const key = layers.join(',');
    if (key !== this.key) {
      const keep = this.select.value;
      this.key = key;
      this.select.replaceChildren(...layers.map((l, i) => el('option', { text: `layer ${l}`, attrs: { value: String(i) } })));
      if (this.touched && Number(keep) < layers.length) this.select.value = keep;
    }
    if (!this.touched) this.select.value = String(Math.max(0, Math.min(preferred, layers.length - 1)));
    return Number(this.select.value) || 0;
  }
}
