// Runs one experiment spec for a magic: progress and partial rows stream into a HopscopeView widget, the
// result is bound to `_` (and `--as NAME`), an interrupt keeps the finished rows, and a click on a view cell
// (custom `run-cell`) reruns that single intervention and answers with `cell-result`.
import * as path from 'node:path';
import { KernelInterrupt, errorContent, mimeBundle } from '../display';
import { type ExperimentResult, type ExperimentSpec, type Library, type Model, type View, isModel } from '../library';
import type { WidgetHandle } from '../cell-api';
import { type MagicContext, type MagicOutput, UsageError } from './registry';

export interface RunOptions {
  as?: string;
  /** Run folder: finished work is checkpointed there and skipped when the same command runs again. */
  runDir?: string;
  /** redis://HOST:PORT/DB: the patch sweeps run on that queue's workers (src/queue). */
  queue?: string;
  widget: boolean;
  dryRun: boolean;
  /** Variable holding the model; default: the model of the last %load. */
  model?: string;
  /** Dataset folder; default: the dataset of the last %load --data / experiment --data. */
  data?: string;
  /** Variable holding a second model: the same spec runs on it, and both are drawn on one figure (issue 15). */
  compare?: string;
}

const PROGRESS_MS = 150;

export function resolveModel(ctx: MagicContext, variable: string | undefined, flag = '--model'): Model {
  if (variable) {
    const v = ctx.lookup(variable);
    if (v === undefined) throw new UsageError(`${flag} ${variable}: no variable named ${variable}`);
    if (!isModel(v)) throw new UsageError(`${flag} ${variable}: ${variable} is not a model (it has no hookPoints/numLayers)`);
    return v;
  }
  if (!ctx.session.model) throw new UsageError('no model loaded: run %load <folder|teaching> first, or pass --model <variable>');
  return ctx.session.model;
}

export async function resolveData(ctx: MagicContext, lib: Library, dir: string | undefined): Promise<unknown> {
  if (!dir) return ctx.session.data ?? undefined;
  let data = ctx.session.datasets.get(dir);
  if (data === undefined) {
    data = await Promise.race([lib.loadDataset(dir), ctx.hardStop]);
    ctx.session.datasets.set(dir, data);
  }
  ctx.session.data = data;
  return data;
}

function rowsOf(table: unknown, limit: number): Record<string, unknown>[] {
  if (Array.isArray(table)) return table.slice(0, limit) as Record<string, unknown>[];
  const objects = (table as { objects?: (o: { limit: number }) => Record<string, unknown>[] } | null)?.objects;
  return typeof objects === 'function' ? objects.call(table, { limit }) : [];
}

/** Calls `fn` at most every `ms`, always with the latest state; `now()` flushes. */
class Throttle {
  private timer: NodeJS.Timeout | null = null;
  private last = 0;
  constructor(
    private readonly ms: number,
    private readonly fn: () => void,
  ) {}
  poke(): void {
    if (this.timer) return;
    const wait = Math.max(0, this.last + this.ms - Date.now());
    this.timer = setTimeout(() => this.now(), wait);
  }
  now(): void {
    this.cancel();
    this.last = Date.now();
    this.fn();
  }
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** The spec for one clicked cell of a view: the same experiment at one layer (and position/row when given). */
export function oneCellSpec(spec: ExperimentSpec, req: Record<string, unknown>): ExperimentSpec {
  const layer = Number(req.layer);
  if (!Number.isInteger(layer) || layer < 0) throw new UsageError(`run-cell: layer ${JSON.stringify(req.layer)} is not a layer index`);
  const one: ExperimentSpec = { ...spec, layers: [layer] };
  if (req.position != null) one.positions = [req.position];
  if (req.row != null) one.rows = [req.row];
  return one;
}

const ANSWER_FIELDS = ['answer', 'generation', 'prediction', 'tokenText', 'text'];

/** The cell type of a kind's result (cell-api.d.ts `ResultOf`): a built-in kind's; a registered kind's is untyped. */
export function resultType(lib: Pick<Library, 'EXPERIMENT_KINDS'>, kind: string): string | undefined {
  return lib.EXPERIMENT_KINDS?.includes(kind) ? `ResultOf<${JSON.stringify(kind)}>` : undefined;
}

/** The frontend shows `answer` as text: the summary's answer, else the first row's answer-like field. */
export function answerOf(r: ExperimentResult): string {
  const first = rowsOf(r.table, 1)[0];
  const field = [r.summary, first ?? {}].flatMap((o) => ANSWER_FIELDS.filter((k) => o[k] != null).map((k) => o[k]))[0];
  const a = field ?? first ?? null;
  if (a === null) {
    // Nothing to show (e.g. a single-layer rerun whose sample has no identified pair): say so, not "null".
    const warnings = Array.isArray(r.summary.warnings) ? (r.summary.warnings as unknown[]).map(String) : [];
    return `no result: the run produced no rows${warnings.length ? ` (${warnings.join('; ')})` : ''}`;
  }
  return typeof a === 'string' ? a : JSON.stringify(a);
}

export async function runSpec(spec: ExperimentSpec, o: RunOptions, ctx: MagicContext, label: string): Promise<MagicOutput> {
  const lib = ctx.lib(label);
  // The library's validateSpec returns the spec with its defaults filled in (and throws SpecError).
  const checked = lib.validateSpec(spec);
  if (checked && typeof checked === 'object') spec = checked as ExperimentSpec;
  if (o.dryRun) return { value: spec, show: true };
  const model = resolveModel(ctx, o.model);
  // Checked before the first run starts, so a typo does not cost the whole sweep.
  const other = o.compare ? resolveModel(ctx, o.compare, '--compare') : null;
  const data = await resolveData(ctx, lib, o.data);
  const title = `${spec.kind}`;
  const rows: Record<string, unknown>[] = [];
  let progress = { done: 0, total: 0 };

  const partialResult = (extra: Record<string, unknown>): ExperimentResult => {
    const r = lib.partialResult(spec.kind, spec, rows, progress);
    return { ...r, summary: { ...r.summary, ...extra } };
  };
  /** The drawable view of a (partial) result, or the reason there is none (the table fallback is printed, not drawn). */
  const viewFor = (r: ExperimentResult): Exclude<View, { view: 'table' }> | string => {
    try {
      const v = lib.viewFromResult(r);
      return v.view === 'table' ? `no ${spec.kind} view can be drawn from this result` : v;
    } catch (e) {
      return `viewFromResult failed: ${(e as Error)?.message ?? String(e)}`;
    }
  };

  let w: WidgetHandle | null = null;
  if (o.widget) {
    // Until the first rows arrive: the kind's own view with no data, which the frontend shows as "waiting".
    const waiting = lib.viewKindOf(spec.kind) ?? 'table';
    w = ctx.widgets.create({ state: { view: waiting, title: `${title} (running)`, data: {}, progress, error: null } });
    w.display();
  }
  let rowsChanged = false;
  let drawn = false;
  let settled = false;
  const throttle = new Throttle(PROGRESS_MS, () => {
    if (!w) return;
    const patch: Record<string, unknown> = { progress: { ...progress } };
    if (rowsChanged) {
      rowsChanged = false;
      // Every kind draws its partial rows (src/experiments/views.ts); one with nothing drawable yet keeps waiting.
      const v = viewFor(partialResult({}));
      if (typeof v !== 'string') {
        Object.assign(patch, v);
        drawn = true;
      }
    }
    w.set(patch);
  });

  let result: ExperimentResult;
  try {
    result = await Promise.race([
      lib.runExperiment(spec, {
        model,
        data,
        runDir: o.runDir,
        queue: o.queue,
        signal: ctx.signal,
        onProgress: (ev) => {
          progress = { done: ev.done, total: ev.total };
          throttle.poke();
        },
        onPartial: (more) => {
          rows.push(...more);
          rowsChanged = true;
          // The first drawable rows replace "waiting" at once (a sweep may emit the rest without yielding to a
          // timer); a microtask, so the progress event that follows the rows is drawn with them.
          if (drawn) throttle.poke();
          else queueMicrotask(() => !drawn && rowsChanged && !settled && throttle.now());
        },
      }),
      ctx.hardStop,
    ]);
  } catch (e) {
    settled = true;
    throttle.cancel();
    if (ctx.signal.aborted) {
      const partial = partialResult({ interrupted: true });
      await ctx.keep(partial, o.as);
      const msg = `interrupted at ${progress.done}/${progress.total}; ${rows.length} finished rows kept in _${o.as ? ` and ${o.as}` : ''}`;
      const v = viewFor(partial);
      w?.set({ ...(typeof v === 'string' ? {} : v), progress, error: msg });
      throw new KernelInterrupt(msg);
    }
    w?.set({ progress: null, error: errorContent(e).traceback[0] });
    throw e;
  }
  settled = true;
  throttle.cancel();
  await ctx.keep(result, o.as, resultType(lib, spec.kind));
  const v = viewFor(result);
  if (w) {
    w.set(typeof v === 'string' ? { progress: null, error: `${v}; the result is in _` } : { ...v, progress: null, error: null });
    listenForCellRuns(w, lib, result, model, data, ctx);
  }
  if (ctx.signal.aborted) throw new KernelInterrupt(`interrupted; the result the library returned is kept in _${o.as ? ` and ${o.as}` : ''}`);
  if (other && o.compare) {
    const figure = await compareRun(result, other, o.compare, o, ctx, lib, data, w);
    return { value: result, show: !w, figure, ...(w ? {} : { bundle: { 'text/plain': `${summaryText(result)}\n${o.compare}: the same spec's result is bound to ${comparedName(o)}` } }) };
  }
  // Without a drawn view, the table itself is the output.
  if (!w || typeof v === 'string') return { value: result, show: true, bundle: { ...mimeBundle(result.table), 'text/plain': summaryText(result) } };
  return { value: result, show: false };
}

/** Where `--compare VAR` binds the second model's result: `NAME_VAR` with `--as NAME`, else `_VAR`. */
function comparedName(o: RunOptions): string {
  return `${o.as ?? ''}_${o.compare}`;
}

/**
 * `--compare VAR`: the validated spec of the finished run, again on the model in VAR; both on one figure
 * (`compareResults`, first model first: a click on the figure runs a cell on it). The second result is bound to
 * `_VAR` (or `NAME_VAR` with `--as NAME`); `_` stays the first. An interrupt or a failure keeps the first result.
 */
async function compareRun(
  first: ExperimentResult, other: Model, variable: string, o: RunOptions, ctx: MagicContext, lib: Library, data: unknown, w: WidgetHandle | null,
): Promise<View> {
  // The first model's name: its variable (--model, or the last %load's --as), else its folder's name.
  const ownLabel = o.model ?? ctx.session.modelName ?? (ctx.session.modelSource ? path.basename(String(ctx.session.modelSource)) : 'model');
  const otherLabel = variable === ownLabel ? `${variable} (2)` : variable;
  let progress = { done: 0, total: 0 };
  const throttle = new Throttle(PROGRESS_MS, () => w?.set({ progress: { ...progress } }));
  w?.set({ title: `${first.kind}: running on ${variable}` });
  let second: ExperimentResult;
  try {
    second = await Promise.race([
      lib.runExperiment(first.spec, {
        model: other,
        data,
        // Its own checkpoint folder: the first model's finished rows must never be read as this one's.
        runDir: o.runDir ? path.join(o.runDir, `compare-${variable}`) : undefined,
        queue: o.queue,
        signal: ctx.signal,
        onProgress: (ev) => {
          progress = { done: ev.done, total: ev.total };
          throttle.poke();
        },
      }),
      ctx.hardStop,
    ]);
  } catch (e) {
    throttle.cancel();
    const what = ctx.signal.aborted ? 'interrupted' : `failed: ${errorContent(e).traceback[0]}`;
    w?.set({ title: first.kind, progress: null, error: `the run on ${variable} ${what}; the first model's result is drawn and kept in _` });
    if (ctx.signal.aborted) throw new KernelInterrupt(`interrupted the run on ${variable}; the first model's result is kept in _${o.as ? ` and ${o.as}` : ''}`);
    throw e;
  }
  throttle.cancel();
  await ctx.keep(second, comparedName(o), resultType(lib, first.kind));
  await ctx.keep(first, o.as, resultType(lib, first.kind)); // `_` is the first model's again
  const figure = lib.compareResults({ [ownLabel]: first, [otherLabel]: second }, `${first.kind}: ${ownLabel} vs ${otherLabel}`);
  w?.set({ ...figure, progress: null, error: null });
  return figure;
}

function summaryText(r: ExperimentResult): string {
  const t = r.table as { numRows?: () => number } | unknown[];
  const n = Array.isArray(t) ? t.length : typeof t?.numRows === 'function' ? t.numRows() : '?';
  return `${r.kind}: ${n} rows; summary ${JSON.stringify(r.summary)}`;
}

function listenForCellRuns(w: WidgetHandle, lib: Library, result: ExperimentResult, model: Model, data: unknown, ctx: MagicContext): void {
  w.on('custom', (content) => {
    if (content.type !== 'run-cell') return;
    ctx.background(async (signal) => {
      try {
        const r = await lib.runExperiment(oneCellSpec(result.spec, content), { model, data, signal });
        w.send({ type: 'cell-result', request: content, answer: answerOf(r), details: { summary: r.summary, rows: rowsOf(r.table, 50) } });
      } catch (e) {
        w.send({ type: 'cell-result', request: content, answer: `failed: ${errorContent(e).traceback[0]}`, details: { error: errorContent(e) } });
      }
    });
  });
}
