// The kernel's own part of what cells see: `widgets` and the helpers on `hs`. Self-contained on purpose: tslab
// type-checks every cell against it, and importing src/ here would make tslab load and check all of src/ at
// kernel start (and reject it: src/ is outside its rootDir). The library's part of `hs` is typed in
// cell-api.d.ts, from src/index.ts, and reaches tslab as generated declarations (cell-types.ts).
// kernel/widgets.ts `implements` these interfaces, so tsc keeps the two in step.

export interface WidgetModelNames {
  _model_name: string;
  _model_module: string;
  _model_module_version: string;
  _view_name: string;
  _view_module: string;
  _view_module_version: string;
}

export interface WidgetCreateOptions {
  /** Frontend class names; each missing one defaults to the hopscope view's (HopscopeViewModel/HopscopeView). */
  model?: Partial<WidgetModelNames>;
  state?: Record<string, unknown>;
  /** Binary values by dotted path into `state` ("data.values"); typed arrays inside `state` work as well. */
  buffers?: Record<string, ArrayBuffer | ArrayBufferView>;
}

export interface WidgetHandle {
  /** The model id the frontend knows this widget by (its comm id). */
  readonly id: string;
  readonly isOpen: boolean;
  /** A shallow copy of the whole state, class names included. */
  readonly state: Record<string, unknown>;
  get(key: string): unknown;
  /** Changes keys here and in every view. */
  set(patch: Record<string, unknown>): this;
  /** Updates from the frontend (after they are echoed back); returns an unsubscribe function. */
  on(event: 'change', fn: (changed: Record<string, unknown>, widget: WidgetHandle) => void): () => void;
  /** Custom messages from the frontend (`model.send(...)` there). */
  on(event: 'custom', fn: (content: Record<string, unknown>, buffers: Uint8Array[], widget: WidgetHandle) => void): () => void;
  on(event: 'close', fn: (widget: WidgetHandle) => void): () => void;
  /** A custom message to the frontend views. */
  send(content: Record<string, unknown>, buffers?: (ArrayBuffer | ArrayBufferView)[]): void;
  /** Shows a view in the output of the cell being executed. */
  display(): void;
  close(): void;
}

export interface WidgetsApi {
  create(opts?: WidgetCreateOptions): WidgetHandle;
  /** Whether a kernel is attached (library code can fall back to text output when not). */
  available(): boolean;
  list(): WidgetHandle[];
}

export interface HsKernel {
  /** AbortSignal of the running cell: aborted on interrupt (pass it to long loops and to runExperiment). */
  signal(): AbortSignal;
  widgets: WidgetsApi;
  /** Displays any value as the kernel would show a cell's last expression. */
  display(value: unknown): void;
  /**
   * Writes a view's figure as PNG, SVG or PDF (by the extension) without a browser, so headless runs (nbconvert)
   * write figures too. `view`: a widget a magic showed (`widgets.list()`), an experiment result, or a view state
   * `{view, title, data}`. Resolves to the absolute path written.
   */
  saveFigure(view: unknown, file: string): Promise<string>;
}

/**
 * `hs` while the library's declarations are not generated yet (cell-types.ts builds them in the background):
 * library members untyped, so cells still compile.
 */
export interface HsUntyped extends HsKernel {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly [member: string]: any;
}
