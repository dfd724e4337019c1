// What a view renderer is: it owns the body of the frame, redraws from validated data, lists its plots.

import type { RunCellRequest, ViewKind } from '../../../src/report/protocol';
import type { AnyViewState, ViewDataMap, ViewState } from '../../../src/report/views';
import type { PlotlyStatic } from '../plotly-types';

/** What a click asks the kernel to compute; `view` and `type` are filled in by the widget. */
export type CellRequest = Omit<RunCellRequest, 'type' | 'view'>;

export interface ViewContext {
  plotly: PlotlyStatic;
  /** Ask the kernel to run one cell of the sweep; `label` describes it to the user ("layer 20, pair 3"). */
  runCell(request: CellRequest, label: string): void;
}

export interface NamedPlot {
  name: string;
  div: HTMLElement;
}

export interface ViewRenderer<K extends ViewKind = ViewKind> {
  /** Draw, or redraw after new data arrived (incremental: Plotly.react keeps zoom and hover state). */
  update(state: ViewState<K>): Promise<void>;
  /** The drawn charts, for PNG/SVG export and resizing. */
  plots(): NamedPlot[];
  dispose(): void;
}

export type RendererFactory<K extends ViewKind> = (body: HTMLElement, ctx: ViewContext) => ViewRenderer<K>;

export type AnyRendererFactory = (body: HTMLElement, ctx: ViewContext) => ViewRenderer;

export type { AnyViewState, ViewDataMap };
