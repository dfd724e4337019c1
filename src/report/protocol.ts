// The one wire contract between the library, the kernel and the widgets: widget names, view kinds, the widget
// state and the custom messages. Pure TypeScript with no imports, so the browser bundle and the kernel (which
// runs outside the library and imports it type-only) read the same definitions; issue 13 found four copies.

/** The widget model/view names the kernel must send (widget protocol 2.1). */
export const WIDGET_NAMES = {
  _model_name: 'HopscopeViewModel',
  _model_module: 'hopscope-widgets',
  _model_module_version: '^0.1.0',
  _view_name: 'HopscopeView',
  _view_module: 'hopscope-widgets',
  _view_module_version: '^0.1.0',
} as const;

/** The version the frontend registers; `_model_module_version` is a semver range matched against it. */
export const WIDGETS_VERSION = '0.1.0';

/**
 * The colour scale of every signed heat map, in the widgets (plotly) and the figures (SVG, PNG, PDF) alike:
 * negative red, zero white, positive blue (ColorBrewer RdBu), as evenly spaced stops from the scale's minimum to
 * its maximum. One definition, because the two drawings once used opposite ends for the same sign.
 */
export const DIVERGING_STOPS = ['#B2182B', '#EF8A62', '#F7F7F7', '#67A9CF', '#2166AC'] as const;

/** Every view a HopscopeView widget can draw; each has a `...Data` schema in src/report/views.ts. */
export const VIEW_KINDS = [
  'layer-switch',
  'freeze-curve',
  'knockout-map',
  'probe-accuracy',
  'logit-lens',
  'attribution-map',
  'recall-gap',
  'recovery-curve',
] as const;
export type ViewKind = (typeof VIEW_KINDS)[number];

/** What `viewFromResult` returns when a result has no drawable view yet: its rows (printed, not drawn). */
export const TABLE_VIEW = 'table';

export function isViewKind(v: unknown): v is ViewKind {
  return typeof v === 'string' && (VIEW_KINDS as readonly string[]).includes(v);
}

export interface Progress {
  done: number;
  total: number;
}

/** A table fallback's data: the first rows of the result. */
export interface TableData {
  columns: string[];
  rows: Record<string, unknown>[];
}

/**
 * Another model's data for the same view kind, drawn on the same figure (issue 15: "both models' curves on one
 * figure"). Curve views overlay it (one colour per model); heat maps stack one panel per model.
 */
export interface ComparedData {
  /** The model's name in the legend or over its panel ("late", "early"). */
  label: string;
  data: Record<string, unknown>;
}

/** At most this many models on one figure: beyond it the colours repeat and the legend stops being readable. */
export const MAX_COMPARED = 6;

/**
 * A view of an experiment result as it travels to the widget: a drawable view kind with its data (the
 * `...Data` shape of src/report/views.ts, in any wire form `validateViewState` accepts), or the table fallback.
 * A comparison (`compareResults`) names the model behind `data` (`label`) and brings the others (`compare`).
 */
export type WireView =
  | { view: ViewKind; title: string; data: Record<string, unknown>; label?: string | null; compare?: ComparedData[] | null }
  | { view: typeof TABLE_VIEW; title: string; data: TableData };

/** A HopscopeView widget's synced state: `{view, title, data, progress, error, label, compare}` (data `{}` = waiting). */
export interface WidgetState {
  view: ViewKind | typeof TABLE_VIEW;
  title: string;
  data: Record<string, unknown>;
  progress: Progress | null;
  error: string | null;
  /** The model behind `data` when others are compared with it; null otherwise. */
  label?: string | null;
  /** Other models' data of the same view kind, drawn on the same figure; null or [] = none. */
  compare?: ComparedData[] | null;
}

/** The synced state's keys, in one place for the widget model, its view and the static page writer. */
export const WIDGET_STATE_KEYS = ['view', 'title', 'data', 'progress', 'error', 'label', 'compare'] as const;

// ---------------------------------------------------------------------------------------------------------
// Custom messages (frontend ⇄ kernel)

/** Sent by the frontend when a layer or cell is clicked. */
export interface RunCellRequest {
  type: 'run-cell';
  view: ViewKind;
  layer: number;
  /** Token position index (logit-lens, attribution-map). */
  position?: number;
  /** Row index: pair (layer-switch), edge set (knockout-map), 0 image / 1 text (probe-accuracy). */
  row?: number;
}

/** The kernel's answer to a RunCellRequest. */
export interface CellResult {
  type: 'cell-result';
  request: Partial<RunCellRequest>;
  answer: string;
  details?: unknown;
}

export function isCellResult(v: unknown): v is CellResult {
  return typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'cell-result' && typeof (v as { answer?: unknown }).answer === 'string';
}
