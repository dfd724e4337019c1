// The widget view of a result, final or partial, through its kind's definition (src/experiments/registry.ts):
// a finished result's own `summary.view`, else the view built from the rows streamed so far, else the rows as
// a table. The kernel calls this on every throttled update of a live sweep, so it draws while it runs.
import * as aq from 'arquero';
import { InputError } from '../errors';
import type { TableData, WireView } from '../report/protocol';
import type { Row } from './checkpoint';
import type { ExperimentResult } from './context';
import { findExperiment } from './registry';
import type { SpecBase } from './spec';

export type ExperimentView = WireView;

const TABLE_ROWS = 500;

/** A result of a sweep still running: the rows so far (summary.partial marks it; no summary.view). */
export function partialResult<S>(kind: string, spec: S, rows: readonly Row[], progress: { done: number; total: number } | null = null): ExperimentResult<S> {
  return { kind, spec, table: aq.from(rows as Row[]), summary: { partial: true, rows: rows.length, done: progress?.done ?? null, total: progress?.total ?? null } };
}

/** The view of a result; the table fallback when its kind has no view or nothing can be drawn yet. */
export function viewFromResult(result: Pick<ExperimentResult<unknown>, 'kind' | 'spec' | 'table' | 'summary'>): ExperimentView {
  const def = findExperiment(result.kind);
  if (def) {
    const own = result.summary.partial ? null : result.summary.view;
    if (own && typeof own === 'object') return { view: def.view.kind, title: result.kind, data: own as Record<string, unknown> };
    const data = def.view.build({ spec: result.spec as SpecBase, rows: result.table.objects() as Row[], summary: result.summary });
    if (data) return { view: def.view.kind, title: result.kind, data: data as Record<string, unknown> };
  }
  const table: TableData = { columns: result.table.columnNames(), rows: result.table.objects({ limit: TABLE_ROWS }) as Record<string, unknown>[] };
  return { view: 'table', title: result.kind, data: table };
}

type ViewableResult = Pick<ExperimentResult<unknown>, 'kind' | 'spec' | 'table' | 'summary'>;

/**
 * Several models' results of one experiment kind as one figure (issue 15: "both models' curves on one figure"):
 * `compareResults({ late, early })` draws late's and early's curves on one plot, one colour each (heat maps get
 * one panel per model). The first entry is the view's own model: a click on the figure runs a cell on it. How many
 * models one figure takes is the view protocol's rule (MAX_COMPARED), checked where the view is validated.
 */
export function compareResults(results: Record<string, ViewableResult>, title?: string): ExperimentView {
  const entries = Object.entries(results ?? {});
  if (entries.length === 0) throw new InputError('compareResults: give the results to compare, e.g. { late: r1, early: r2 }');
  for (const [label, r] of entries)
    if (typeof r !== 'object' || r === null || typeof r.kind !== 'string' || typeof r.table?.objects !== 'function')
      throw new InputError(`compareResults: ${label} is not an experiment result (what hs.runExperiment or a magic's --as returns)`);
  const kinds = [...new Set(entries.map(([, r]) => r.kind))];
  if (kinds.length !== 1) throw new InputError(`compareResults: the results are of different kinds (${entries.map(([l, r]) => `${l}: ${r.kind}`).join(', ')}); one figure compares one kind`);
  const views = entries.map(([label, r]) => {
    const v = viewFromResult(r);
    if (v.view === 'table') throw new InputError(`compareResults: ${label}'s ${r.kind} result has nothing to draw yet (no rows), so it cannot be compared`);
    return { label, view: v };
  });
  const [own, ...others] = views;
  return {
    view: own.view.view,
    title: title ?? `${kinds[0]}: ${entries.map(([l]) => l).join(' vs ')}`,
    data: own.view.data,
    label: own.label,
    compare: others.map((o) => ({ label: o.label, data: o.view.data })),
  };
}
