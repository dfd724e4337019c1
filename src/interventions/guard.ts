// The no-op guard: every compiled intervention records whether its hook was reached, how many positions
// it touched and the largest change it made, so a patch that silently does nothing (a padding offset, a
// wrong hook name, a knockout that only blocks causally-masked edges) is reported, or thrown with `strict`.
import * as tf from '@tensorflow/tfjs-core';
import { HopscopeError } from '../errors';

/** Thrown by strict runs when an intervention had no effect. */
export class NoOpError extends HopscopeError {}

export interface InterventionRecord {
  label: string;
  kind: string;
  hooks: string[];
  /** Hook (or attention layer) reached at least once with something selected. */
  reached: boolean;
  /** Positions written (summed over hook calls), or attention edges blocked for knockout. */
  touched: number;
  /** Largest |new − old| over every write (NaN for knockout, which writes a mask, not a value). */
  maxChange: number;
}

export interface InterventionReport {
  interventions: InterventionRecord[];
  warnings: string[];
}

/** Live tracking for one intervention during a run. */
export class Tracker {
  reached = false;
  touched = 0;
  private change: tf.Tensor | null = null;

  constructor(
    readonly label: string,
    readonly kind: string,
    readonly hooks: string[],
  ) {}

  /** Called from inside a hook (a tidy scope): keeps a running max of |after − before|. */
  wrote(before: tf.Tensor, after: tf.Tensor, positions: number): void {
    this.reached = true;
    this.touched += positions;
    const m = tf.max(tf.abs(tf.sub(after, before)));
    const next = this.change ? tf.maximum(this.change, m) : m;
    if (this.change) this.change.dispose();
    this.change = tf.keep(next);
  }

  blocked(edges: number): void {
    this.reached = true;
    this.touched += edges;
  }

  record(): InterventionRecord {
    const maxChange = this.change ? (this.change.dataSync()[0] as number) : this.kind === 'knockout' ? NaN : 0;
    return { label: this.label, kind: this.kind, hooks: this.hooks, reached: this.reached, touched: this.touched, maxChange };
  }

  dispose(): void {
    this.change?.dispose();
    this.change = null;
  }
}

/** Turns tracker records and the model's unused hooks into warnings (and throws when strict). */
export function guardReport(trackers: Tracker[], unusedHooks: string[], strict: boolean): InterventionReport {
  const interventions = trackers.map((t) => t.record());
  const warnings: string[] = [];
  for (const h of unusedHooks)
    warnings.push(`hook ${h} was never reached by the model (wrong name, or the run stopped/started past it): its intervention did nothing`);
  for (const r of interventions) {
    if (r.hooks.every((h) => unusedHooks.includes(h))) continue;
    if (!r.reached || r.touched === 0)
      warnings.push(
        r.kind === 'knockout'
          ? `${r.label}: blocked no attention edge that causality and padding had not already blocked (a no-op)`
          : `${r.label}: selected no position in any call (a no-op; check the selector against the prompt spans and padding)`,
      );
    else if (r.maxChange === 0) warnings.push(`${r.label}: every write equals the value it replaced (a no-op: patching a run with its own states?)`);
  }
  if (strict && warnings.length) throw new NoOpError(`strict run: ${warnings.join('; ')}`);
  return { interventions, warnings };
}
