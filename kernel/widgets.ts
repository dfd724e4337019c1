// Jupyter widgets, protocol 2.1 (ipywidgets 8): a kernel-side model whose state mirrors a frontend model.
// `widgets.create({model, state}).display()` from a cell or from kernel code; the frontend names the view
// class by `_model_name`/`_view_name` and module versions (semver ranges matched against what it registers).
import { type BufferPath, putBuffers, removeBuffers } from '../src/report/buffers';
import type { WidgetCreateOptions, WidgetHandle, WidgetModelNames, WidgetsApi } from './cell-api';
import type { Comm, CommManager } from './comms';
import type { Content, WireMessage } from './messages';
// A leaf module with no imports: cheap at kernel start, and the one place the widget names are written.
import { WIDGET_NAMES } from '../src/report/protocol';

export const WIDGET_PROTOCOL_VERSION = '2.1.0';
export const WIDGET_VIEW_MIME = 'application/vnd.jupyter.widget-view+json';

export type ModelNames = WidgetModelNames;

/** The hopscope view widget (frontend in `widgets/`, package `hopscope-widgets`): the wire protocol's names. */
export const HOPSCOPE_VIEW: Readonly<ModelNames> = Object.freeze({ ...WIDGET_NAMES });

export type CreateOptions = WidgetCreateOptions;
export type ChangeListener = (changed: Record<string, unknown>, widget: WidgetHandle) => void;
export type CustomListener = (content: Content, buffers: Uint8Array[], widget: WidgetHandle) => void;
export type CloseListener = (widget: WidgetHandle) => void;

const meta = { version: WIDGET_PROTOCOL_VERSION };

export class Widget implements WidgetHandle {
  private readonly values: Record<string, unknown>;
  private readonly listeners = { change: new Set<ChangeListener>(), custom: new Set<CustomListener>(), close: new Set<CloseListener>() };

  /** @internal use `widgets.create`. */
  constructor(
    private readonly comm: Comm,
    private readonly hub: WidgetHub,
    readonly names: Readonly<ModelNames>,
    state: Record<string, unknown>,
  ) {
    this.values = { ...names, ...state };
    comm.onMsg = (data, buffers, msg) => this.receive(data, buffers, msg);
    comm.onClose = () => {
      hub.forget(this);
      for (const fn of this.listeners.close) fn(this);
    };
  }

  /** The model id the frontend knows this widget by (its comm id). */
  get id(): string {
    return this.comm.id;
  }

  get isOpen(): boolean {
    return this.comm.isOpen;
  }

  /** A shallow copy of the whole state, class names included. */
  get state(): Record<string, unknown> {
    return { ...this.values };
  }

  get(key: string): unknown {
    return this.values[key];
  }

  /** Changes keys here and in every view (`update`). */
  set(patch: Record<string, unknown>): this {
    Object.assign(this.values, patch);
    this.sendState('update', patch);
    return this;
  }

  /** 'change' fires for updates from the frontend only (a listener that calls `set` cannot loop on itself). */
  on(event: 'change', fn: ChangeListener): () => void;
  on(event: 'custom', fn: CustomListener): () => void;
  on(event: 'close', fn: CloseListener): () => void;
  on(event: 'change' | 'custom' | 'close', fn: ChangeListener | CustomListener | CloseListener): () => void {
    const set = this.listeners[event] as Set<typeof fn>;
    if (!set) throw new Error(`widget event ${JSON.stringify(event)} does not exist; use change, custom or close`);
    set.add(fn);
    return () => set.delete(fn);
  }

  /** A custom message to the frontend views (`model.on('msg:custom', ...)` there). */
  send(content: Content, buffers: (ArrayBuffer | ArrayBufferView)[] = []): void {
    this.comm.send({ method: 'custom', content }, buffers.map(toBuf), meta);
  }

  /** Shows a view of this widget in the output of the cell being executed. */
  display(): void {
    const b = this._repr_mimebundle_();
    this.hub.comms.iopub.publish('display_data', { data: b, metadata: {}, transient: {} });
  }

  close(): void {
    this.comm.close();
  }

  /** Lets `w` as a cell's last expression display the widget, like ipywidgets. */
  _repr_mimebundle_(): Record<string, unknown> {
    return {
      [WIDGET_VIEW_MIME]: { version_major: 2, version_minor: 0, model_id: this.id },
      'text/plain': `${this.names._view_name}(${String(this.values.title ?? this.id)})`,
    };
  }

  /** @internal full state as `update` / `update_states` carry it. */
  serialize(): { model_name: string; model_module: string; model_module_version: string; state: Record<string, unknown> } {
    return {
      model_name: this.names._model_name,
      model_module: this.names._model_module,
      model_module_version: this.names._model_module_version,
      state: this.state,
    };
  }

  private sendState(method: 'update' | 'echo_update', state: Record<string, unknown>): void {
    if (!this.comm.isOpen) return;
    const r = removeBuffers(state);
    this.comm.send({ method, state: r.state, buffer_paths: r.buffer_paths }, r.buffers, meta);
  }

  private receive(data: Content, buffers: Buffer[], _msg: WireMessage): void {
    switch (data.method) {
      case 'update': {
        const state = (typeof data.state === 'object' && data.state !== null ? data.state : {}) as Record<string, unknown>;
        // JSON.parse makes "__proto__" an own key; Object.assign below would make it this widget's prototype.
        delete state['__proto__'];
        putBuffers(state, data.buffer_paths, buffers);
        // Echo first (ipywidgets 8 order): every view, the sender included, learns the kernel took this value.
        this.sendState('echo_update', state);
        Object.assign(this.values, state);
        for (const fn of this.listeners.change) fn(state, this);
        return;
      }
      case 'request_state':
        this.sendState('update', this.values);
        return;
      case 'custom': {
        const content = (typeof data.content === 'object' && data.content !== null ? data.content : {}) as Content;
        for (const fn of this.listeners.custom) fn(content, buffers, this);
        return;
      }
      default:
        throw new Error(`widget ${this.id}: unknown comm method ${JSON.stringify(data.method)}`);
    }
  }
}

/** The widgets of one kernel: creation, the live registry, and the `jupyter.widget.control` comm. */
export class WidgetHub {
  private readonly live = new Map<string, Widget>();

  constructor(readonly comms: CommManager) {
    comms.registerTarget('jupyter.widget.control', (comm) => {
      comm.onMsg = (data) => {
        if (data.method !== 'request_states') return;
        const r = removeBuffers(this.states());
        comm.send({ method: 'update_states', states: r.state, buffer_paths: r.buffer_paths }, r.buffers, meta);
      };
    });
  }

  create(opts: CreateOptions = {}): Widget {
    const names: ModelNames = { ...HOPSCOPE_VIEW, ...(opts.model ?? {}) };
    const state: Record<string, unknown> = { ...(opts.state ?? {}) };
    for (const [path, bytes] of Object.entries(opts.buffers ?? {})) {
      putBuffers(state, [path.split('.').map((s) => (/^\d+$/.test(s) ? Number(s) : s)) as BufferPath], [toBuf(bytes)]);
    }
    const r = removeBuffers({ ...names, ...state });
    const comm = this.comms.open(
      'jupyter.widget',
      { state: r.state, buffer_paths: r.buffer_paths },
      { metadata: meta, buffers: r.buffers },
    );
    const w = new Widget(comm, this, names, state);
    this.live.set(w.id, w);
    return w;
  }

  all(): Widget[] {
    return [...this.live.values()];
  }

  /** `update_states` payload: every live widget's full state by model id. */
  states(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const w of this.live.values()) out[w.id] = w.serialize();
    return out;
  }

  /** @internal */
  forget(w: Widget): void {
    this.live.delete(w.id);
  }
}

function toBuf(b: ArrayBuffer | ArrayBufferView): Buffer {
  if (Buffer.isBuffer(b)) return b;
  if (b instanceof ArrayBuffer) return Buffer.from(b);
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

let hub: WidgetHub | null = null;

/** @internal the kernel attaches its hub at start (null detaches). */
export function attachWidgetHub(h: WidgetHub | null): void {
  hub = h;
}

function current(): WidgetHub {
  if (!hub) {
    throw new Error('widgets need a running hopscope kernel: this process has no Jupyter comm channel (start the "TypeScript (hopscope)" kernel)');
  }
  return hub;
}

/** The widget API for cells (`widgets`, `hs.widgets`) and kernel code. */
export const widgets: WidgetsApi & { create(opts?: CreateOptions): Widget; list(): Widget[] } = {
  create: (opts: CreateOptions = {}): Widget => current().create(opts),
  /** Whether a kernel is attached (library code can fall back to text output when not). */
  available: (): boolean => hub !== null,
  list: (): Widget[] => (hub ? hub.all() : []),
};
