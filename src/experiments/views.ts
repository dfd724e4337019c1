// Widget views of experiment results: every experiment writes its view's data into `summary.view`
// (the shapes documented in src/report/views.ts); this picks the view name and title.
import type { ExperimentResult } from './context';

export interface ExperimentView {
  view: string;
  title: string;
  data: unknown;
}

const VIEW_OF: Record<string, string> = {
  'recall-gap': 'recall-gap',
  'cross-patch': 'layer-switch',
  freeze: 'freeze-curve',
  knockout: 'knockout-map',
  probe: 'probe-accuracy',
  'logit-lens': 'logit-lens',
  attribution: 'attribution-map',
};

/** The view of a result; a plain table when the kind has no dedicated view or the result has no view data. */
export function viewFromResult(result: Pick<ExperimentResult, 'kind' | 'table' | 'summary'>): ExperimentView {
  const data = result.summary.view;
  const view = VIEW_OF[result.kind];
  if (view && data) return { view, title: result.kind, data };
  const rows = result.table.objects({ limit: 500 }) as Record<string, unknown>[];
  const columns = result.table.columnNames();
  return { view: 'table', title: result.kind, data: { columns, rows } };
}
