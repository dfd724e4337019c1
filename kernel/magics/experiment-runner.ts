// Runs one experiment spec for a magic: progress and partial rows stream into a HopscopeView widget, the
// result is bound to `_` (and `--as NAME`), an interrupt keeps the finished rows, and a click on a view cell
// (custom `run-cell`) reruns that single intervention and answers with `cell-result`.
import { KernelInterrupt, errorContent, mimeBundle } from '../display';
import {
  type ExperimentResult,
  type ExperimentSpec,
  type Library,
  type Model,
  type View,
  isModel,
  loadViewFromResult,
} from '../library';
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
}

const PROGRESS_MS = 150;

export function resolveModel(ctx: MagicContext, variable: string | undefined): Model {
  if (variable) {
    const v = ctx.lookup(variable);
    if (v === undefined) throw new UsageError(`--model ${variable}: no variable named ${variable}`);
    if (!isModel(v)) throw new UsageError(`--model ${variable}: ${variable} is not a model (it has no hookPoints/numLayers)`);
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

function tableOf(rows: Record<string, unknown>[]): unknown {
  try {
    return (require('arquero') as { from(rows: object[]): unknown }).from(rows);
  } catch {
    return rows;
  }
}

function rowsOf(table: unknown, limit: number): Record<string, unknown>[] {
  if (Array.isArray(table)) return table.slice(0, limit) as Record<string, unknown>[];
  const objects = (table as { objects?: (o: { limit: number }) => Record<string, unknown>[] } | null)?.objects;
  return typeof objects === 'function' ? objects.call(table, { limit }) : [];
}

/**
 * The view shown while a sweep has not reported yet (`data: {}` + progress reads "waiting" in the frontend);
 * the real view comes from viewFromResult. A guess per kind, replaced by the first partial or final view.
 */
const WAITING_VIEW: Record<string, string> = {
  'recall-gap': 'recall-gap',
  'cross-patch': 'layer-switch',
  freeze: 'freeze-curve',
  knockout: 'knockout-map',
  'logit-lens': 'logit-lens',
  probe: 'probe-accuracy',
  attribution: 'attribution-map',
  recovery: 'probe-accuracy',
};

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

/** The frontend shows `answer` as text: the summary's answer, else the first row's answer-like field. */
function answerOf(r: ExperimentResult): string {
  const first = rowsOf(r.table, 1)[0];
  const field = [r.summary, first ?? {}].flatMap((o) => ANSWER_FIELDS.filter((k) => o[k] != null).map((k) => o[k]))[0];
  const a = field ?? first ?? null;
  return typeof a === 'string' ? a : JSON.stringify(a);
}

export async function runSpec(spec: ExperimentSpec, o: RunOptions, ctx: MagicContext, label: string): Promise<MagicOutput> {
  const lib = ctx.lib(label);
  // The library's validateSpec returns the spec with its defaults filled in (and throws SpecError).
  const checked = lib.validateSpec(spec);
  if (checked && typeof checked === 'object') spec = checked as ExperimentSpec;
  if (o.dryRun) return { value: spec, show: true };
  const model = resolveModel(ctx, o.model);
  const data = await resolveData(ctx, lib, o.data);
  const viewOf = loadViewFromResult(lib);
  const title = `${spec.kind}`;
  const rows: Record<string, unknown>[] = [];
  let progress = { done: 0, total: 0 };

  const partialResult = (extra: Record<string, unknown>): ExperimentResult => ({
    kind: spec.kind,
    spec,
    table: tableOf(rows),
    summary: { partial: true, done: progress.done, total: progress.total, rows: rows.length, ...extra },
  });
  /** The view of a (partial) result, or the reason there is none. */
  const viewFor = (r: ExperimentResult): View | string => {
    if (!viewOf) return 'no viewFromResult in the library yet (src/report/views.ts)';
    try {
      return viewOf(r);
    } catch (e) {
      return `viewFromResult failed: ${(e as Error)?.message ?? String(e)}`;
    }
  };

  let w: WidgetHandle | null = null;
  if (o.widget) {
    w = ctx.widgets.create({
      state: { view: WAITING_VIEW[spec.kind] ?? spec.kind, title: `${title} (running)`, data: {}, progress, error: null },
    });
    w.display();
  }
  let rowsChanged = false;
  const throttle = new Throttle(PROGRESS_MS, () => {
    if (!w) return;
    const patch: Record<string, unknown> = { progress: { ...progress } };
    if (rowsChanged) {
      rowsChanged = false;
      // Views accept data that grows while a sweep streams; one that cannot draw a partial table keeps waiting.
      const v = viewFor(partialResult({}));
      if (typeof v !== 'string') Object.assign(patch, v);
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
          throttle.poke();
        },
      }),
      ctx.hardStop,
    ]);
  } catch (e) {
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
  throttle.cancel();
  await ctx.keep(result, o.as);
  const v = viewFor(result);
  if (w) {
    w.set(typeof v === 'string' ? { progress: null, error: `${v}; the result is in _` } : { ...v, progress: null, error: null });
    listenForCellRuns(w, lib, result, model, data, ctx);
  }
  if (ctx.signal.aborted) throw new KernelInterrupt(`interrupted; the result the library returned is kept in _${o.as ? ` and ${o.as}` : ''}`);
  // Without a drawn view, the table itself is the output.
  if (!w || typeof v === 'string') return { value: result, show: true, bundle: { ...mimeBundle(result.table), 'text/plain': summaryText(result) } };
  return { value: result, show: false };
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
