// Turns a list of JSON intervention specs into one RunOptions (hooks + attention mask), composable in
// list order, with the no-op guard attached: call `report(output.unusedHooks)` after the run.
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../errors';
import type { AttnMaskFn, HookFn, RunOptions } from '../models/hooks';
import type { ForwardOutput, Model, ModelInputs } from '../models/model';
import { compileAblate } from './ablate';
import { compileFreeze } from './freeze';
import { Tracker, guardReport, type InterventionReport } from './guard';
import { compileKnockout } from './knockout';
import { compilePatch } from './patch';
import { describeSelector, toSelector, type RowGeometry } from './selectors';
import { compileSteer } from './steer';
import { INTERVENTION_KINDS, type CompileContext, type CompiledPart, type InterventionSpec, type SourceRun } from './types';

export interface Compiled {
  /** Hooks and mask for `model.forward` / `model.generate` (merge other options with `{...base, ...compiled.run}`). */
  run: RunOptions;
  /** Hook names the compiled set writes to. */
  hooks: string[];
  /** Earliest decoder layer any intervention touches (a start-at-layer run may begin there); 0 for embedding/vision hooks. */
  firstLayer: number;
  /** Reads the guard after the run: warnings (or NoOpError when strict). */
  report(unusedHooks: string[]): InterventionReport;
  dispose(): void;
}

function labelOf(spec: InterventionSpec, i: number): string {
  if (spec.label) return spec.label;
  const where =
    spec.kind === 'knockout'
      ? `${describeSelector(toSelector(spec.from))}->${describeSelector(toSelector(spec.to))} @ layers ${spec.layers.join(',')}`
      : spec.kind === 'freeze'
        ? `${describeSelector(toSelector(spec.at))} ${spec.from}..${spec.until}`
        : `${describeSelector(toSelector(spec.at))} @ ${spec.hook ?? `layers ${(spec.layers ?? []).join(',')} ${spec.site ?? 'resid_pre'}`}`;
  return `intervention ${i} (${spec.kind} ${where})`;
}

function firstLayerOf(spec: InterventionSpec, hooks: [string, HookFn][]): number {
  if (spec.kind === 'knockout') return Math.min(...spec.layers);
  if (spec.kind === 'freeze') return spec.source ? spec.from + 1 : spec.from;
  let min = Infinity;
  for (const [h] of hooks) {
    const m = /^lm\.blocks\.(\d+)\./.exec(h);
    min = Math.min(min, m ? Number(m[1]) : 0);
  }
  return min === Infinity ? 0 : min;
}

/** Compiles interventions for a batch whose rows have the given geometry. */
export function compileInterventions(specs: readonly InterventionSpec[], ctx: CompileContext): Compiled {
  if (!Array.isArray(specs)) throw new InputError('interventions must be a list of intervention specs');
  const parts: CompiledPart[] = [];
  const trackers: Tracker[] = [];
  let firstLayer = ctx.numLayers;
  try {
    specs.forEach((raw, i) => {
      const spec = { ...raw, label: labelOf(raw, i) } as InterventionSpec;
      let part: CompiledPart;
      const hookNames = (p: CompiledPart) => p.hooks.map(([h]) => h);
      const tracker = new Tracker(spec.label!, spec.kind, []);
      switch (spec.kind) {
        case 'patch':
          part = compilePatch(spec, ctx, tracker);
          break;
        case 'freeze':
          part = compileFreeze(spec, ctx, tracker);
          break;
        case 'knockout':
          part = compileKnockout(spec, ctx, tracker);
          break;
        case 'ablate':
          part = compileAblate(spec, ctx, tracker);
          break;
        case 'steer':
          part = compileSteer(spec, ctx, tracker);
          break;
        default:
          throw new InputError(`intervention ${i}: kind ${JSON.stringify((raw as { kind: unknown }).kind)} is not one of ${INTERVENTION_KINDS.join(', ')}`);
      }
      tracker.hooks.push(...hookNames(part));
      parts.push(part);
      trackers.push(tracker);
      firstLayer = Math.min(firstLayer, firstLayerOf(spec, part.hooks));
    });
  } catch (e) {
    for (const p of parts) tf.dispose(p.owned);
    for (const t of trackers) t.dispose();
    throw e;
  }
  const run = mergeRunOptions(
    parts.map((p) => {
      const hooks: Record<string, HookFn[]> = {};
      for (const [name, fn] of p.hooks) (hooks[name] ??= []).push(fn);
      return { hooks, attnMask: p.attnMask };
    }),
  );
  const hooks = run.hooks as Record<string, HookFn[]>;
  return {
    run,
    hooks: Object.keys(hooks),
    firstLayer: parts.length ? firstLayer : 0,
    report: (unused) => guardReport(trackers, unused.filter((h) => h in hooks), ctx.strict ?? false),
    dispose() {
      for (const p of parts) {
        tf.dispose(p.owned);
        p.cleanup?.();
      }
      for (const t of trackers) t.dispose();
    },
  };
}

/** Geometry of an unpadded single prompt (or of equally long rows with no padding). */
export function plainRows(spans: readonly import('../io/prompt').PromptSpans[], promptLength?: number): RowGeometry[] {
  const T = promptLength ?? Math.max(...spans.map((s) => s.length));
  return spans.map((s) => ({ spans: s, offset: T - s.length, promptLength: T }));
}

export interface InterveneOptions {
  rows: RowGeometry[];
  sources?: Record<string, SourceRun>;
  strict?: boolean;
  /** Other run options (cache, startLayer/startResid, stopLayer). */
  base?: RunOptions;
}

/** One forward with interventions; returns the output and the guard's report. */
export function intervene(
  model: Model,
  inputs: ModelInputs,
  specs: readonly InterventionSpec[],
  opts: InterveneOptions,
): { output: ForwardOutput; report: InterventionReport } {
  const compiled = compileInterventions(specs, {
    rows: opts.rows,
    numHeads: model.text.numHeads,
    numLayers: model.numLayers,
    sources: opts.sources,
    strict: opts.strict,
  });
  try {
    const output = model.forward(inputs, { ...opts.base, ...compiled.run });
    try {
      return { output, report: compiled.report(output.unusedHooks) };
    } catch (e) {
      output.dispose();
      throw e;
    }
  } finally {
    compiled.dispose();
  }
}

/** Hooks of several compiled sets in one run (each set usually restricted to its own batch rows). */
export function mergeRunOptions(list: readonly RunOptions[]): RunOptions {
  const hooks: Record<string, HookFn[]> = {};
  for (const r of list)
    for (const [name, fns] of Object.entries(r.hooks ?? {})) (hooks[name] ??= []).push(...(Array.isArray(fns) ? fns : [fns]));
  const masks = list.map((r) => r.attnMask).filter((m): m is AttnMaskFn => m !== undefined);
  const out: RunOptions = { hooks };
  if (masks.length === 1) out.attnMask = masks[0];
  else if (masks.length > 1)
    out.attnMask = (layer, ev) => {
      let acc: tf.Tensor | null = null;
      for (const m of masks) {
        const t = m(layer, ev);
        if (t) acc = acc ? tf.add(acc, t) : t;
      }
      return acc;
    };
  return out;
}

/**
 * The first decoder block a set of interventions can affect, without compiling it: a run may start there
 * from cached clean states. `full` when something touches the embedding, vision tower or projector.
 */
export function startLayerOf(specs: readonly InterventionSpec[], numLayers: number): { layer: number; full: boolean } {
  let layer = numLayers;
  let full = false;
  for (const s of specs) {
    if (s.kind === 'knockout') layer = Math.min(layer, ...s.layers);
    else if (s.kind === 'freeze') layer = Math.min(layer, s.source ? s.from + 1 : s.from);
    else if (s.hook) {
      const m = /^lm\.blocks\.(\d+)\./.exec(s.hook);
      if (m) layer = Math.min(layer, Number(m[1]));
      else full = true;
    } else layer = Math.min(layer, ...(s.layers ?? [0]));
  }
  return { layer: full ? 0 : Math.min(layer, numLayers - 1), full };
}
