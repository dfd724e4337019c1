// Live page for the round-trip test (test/widgets/live-roundtrip.test.ts): a plain page served from a real
// Jupyter server's origin that talks to a running kernel with @jupyterlab/services and draws widgets with an
// HTMLManager whose comms are the kernel's (the ipywidgets "web3" example pattern, as JupyterLab's own
// manager does it). Not shipped: `node scripts/build.js live` bundles it to dist/live.js for the test.

import * as base from '@jupyter-widgets/base';
import { HTMLManager } from '@jupyter-widgets/html-manager/lib/htmlmanager';
import { KernelManager, ServerConnection, type Kernel, type KernelMessage } from '@jupyterlab/services';
import * as hopscope from '../index';
import { MODULE_NAME } from '../version';
import { ensureStyle } from '../style';

const VIEW_MIME = 'application/vnd.jupyter.widget-view+json';

function loader(moduleName: string, moduleVersion: string): Promise<unknown> {
  if (moduleName === MODULE_NAME) return Promise.resolve(hopscope);
  return Promise.reject(new Error(`the live page bundles only ${MODULE_NAME}; ${moduleName}@${moduleVersion} is not available`));
}

/** An HTMLManager whose comms are a live kernel's (frontend-opened and kernel-opened alike). */
class LiveManager extends HTMLManager {
  constructor(
    readonly kernel: Kernel.IKernelConnection,
    handleKernelComms: boolean,
  ) {
    super({ loader });
    // One manager per connection owns the kernel's `comm_open`s for jupyter.widget; the handler is awaited by
    // the connection, so later messages on that comm wait until the model exists.
    if (handleKernelComms) {
      kernel.registerCommTarget(this.comm_target_name, async (comm, msg) => {
        await this.handle_comm_open(new base.shims.services.Comm(comm), msg as never);
      });
    }
  }

  override async _create_comm(
    target: string,
    modelId: string,
    data?: unknown,
    metadata?: unknown,
    buffers?: ArrayBuffer[] | ArrayBufferView[],
  ): Promise<base.shims.services.Comm> {
    const comm = this.kernel.createComm(target, modelId);
    if (data || metadata) comm.open(data as never, metadata as never, buffers);
    return new base.shims.services.Comm(comm);
  }

  /** Set when restoring fell back from the control comm to one comm_info_request + a comm per widget. */
  usedFallback = false;

  /** Every widget's state from the kernel, as JupyterLab restores a notebook's widgets. */
  async loadFromKernel(): Promise<void> {
    await this._loadFromKernel();
  }

  protected override async _loadFromKernelModels(): Promise<void> {
    this.usedFallback = true;
    return super._loadFromKernelModels();
  }

  override async _get_comm_info(): Promise<Record<string, unknown>> {
    const reply = await this.kernel.requestCommInfo({ target_name: this.comm_target_name });
    return reply.content.status === 'ok' ? (reply.content.comms as Record<string, unknown>) : {};
  }
}

export interface LiveOutput {
  type: string;
  text?: string;
  modelId?: string;
  ename?: string;
  evalue?: string;
}

export interface ExecuteResult {
  status: string;
  outputs: LiveOutput[];
  /** Model ids of the widgets this cell displayed (each drawn into `.live-output[data-model-id]`). */
  widgets: string[];
  /** Views that could not be created or displayed. */
  failures: string[];
}

let manager: LiveManager | null = null;
let kernel: Kernel.IKernelConnection | null = null;
const connections: Kernel.IKernelConnection[] = [];
const kernels = new KernelManager({ serverSettings: settings() });

function settings(): ServerConnection.ISettings {
  const baseUrl = `${location.origin}/`;
  return ServerConnection.makeSettings({ baseUrl, wsUrl: baseUrl.replace(/^http/, 'ws'), token: '', appendToken: false });
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Waits until a kernel connection is connected and has its kernel_info. */
async function ready(k: Kernel.IKernelConnection): Promise<void> {
  if (k.connectionStatus !== 'connected') {
    await new Promise<void>((resolve) => {
      const on = (_: unknown, s: Kernel.ConnectionStatus) => {
        if (s !== 'connected') return;
        k.connectionStatusChanged.disconnect(on);
        resolve();
      };
      k.connectionStatusChanged.connect(on);
    });
  }
  await k.info;
}

async function show(m: LiveManager, modelId: string, host: HTMLElement): Promise<void> {
  const model = await m.get_model(modelId);
  const view = await m.create_view(model);
  await m.display_view(view, host);
}

function outputArea(id: string): HTMLElement {
  let area = document.getElementById(id);
  if (!area) {
    area = document.createElement('div');
    area.id = id;
    document.body.append(area);
  }
  return area;
}

/** Starts a kernel through the server's REST API and connects to it over its websocket. */
async function start(name: string): Promise<{ kernelId: string; implementation: string }> {
  ensureStyle(document);
  kernel = await kernels.startNew({ name }, { handleComms: true });
  connections.push(kernel);
  manager = new LiveManager(kernel, true);
  await ready(kernel);
  const info = await kernel.info;
  return { kernelId: kernel.id, implementation: info.implementation };
}

/** Runs a cell; widget views it displays are drawn into #outputs before this resolves. */
async function execute(code: string): Promise<ExecuteResult> {
  const k = kernel;
  const m = manager;
  if (!k || !m) throw new Error('start() first');
  const outputs: LiveOutput[] = [];
  const widgets: string[] = [];
  const failures: string[] = [];
  const drawing: Promise<void>[] = [];
  const future = k.requestExecute({ code, stop_on_error: true });
  future.onIOPub = (msg: KernelMessage.IIOPubMessage) => {
    const type = msg.header.msg_type;
    const c = msg.content as Record<string, unknown>;
    if (type === 'stream') outputs.push({ type, text: String(c.text) });
    else if (type === 'error') outputs.push({ type, ename: String(c.ename), evalue: String(c.evalue) });
    else if (type === 'display_data' || type === 'execute_result') {
      const data = (c.data ?? {}) as Record<string, unknown>;
      const spec = data[VIEW_MIME] as { model_id?: string } | undefined;
      if (spec && typeof spec.model_id === 'string') {
        const modelId = spec.model_id;
        widgets.push(modelId);
        outputs.push({ type, modelId });
        const host = document.createElement('div');
        host.className = 'live-output';
        host.dataset.modelId = modelId;
        outputArea('outputs').append(host);
        drawing.push(show(m, modelId, host).catch((e) => void failures.push(`model ${modelId}: ${message(e)}`)));
      } else {
        outputs.push({ type, text: String(data['text/plain'] ?? '') });
      }
    }
  };
  const reply = await future.done;
  await Promise.all(drawing);
  return { status: String(reply?.content.status), outputs, widgets, failures };
}

/**
 * A second connection to the same kernel, as a reloaded page or a second tab makes: its manager asks for every
 * widget's state over the `jupyter.widget.control` comm and draws those of `ids` it got into #restored.
 */
async function restore(ids: string[]): Promise<{ restored: string[]; viaControlComm: boolean; commInfo: string[]; failures: string[] }> {
  if (!kernel) throw new Error('start() first');
  const k = kernels.connectTo({ model: { id: kernel.id, name: kernel.name }, handleComms: true });
  connections.push(k);
  await ready(k);
  const m = new LiveManager(k, false);
  await m.loadFromKernel();
  // What the fallback path would have asked: the kernel's open jupyter.widget comms (comm_info_request).
  const commInfo = Object.keys(await m._get_comm_info());
  const failures: string[] = [];
  const restored = ids.filter((id) => m.has_model(id));
  await Promise.all(
    restored.map(async (id) => {
      const host = document.createElement('div');
      host.className = 'live-restored';
      host.dataset.modelId = id;
      outputArea('restored').append(host);
      await show(m, id, host).catch((e) => void failures.push(`model ${id}: ${message(e)}`));
    }),
  );
  return { restored, viaControlComm: !m.usedFallback, commInfo, failures };
}

/** What a model of the first connection holds at `path` in its state ("DataView" for a binary buffer). */
async function valueKind(modelId: string, path: (string | number)[]): Promise<string> {
  if (!manager) throw new Error('start() first');
  const model = await manager.get_model(modelId);
  let v: unknown = model.get(String(path[0]));
  for (const k of path.slice(1)) v = (v as Record<string | number, unknown> | null)?.[k];
  return Object.prototype.toString.call(v).slice(8, -1);
}

/** Shuts the kernel down through the server and closes every connection. */
async function shutdown(): Promise<void> {
  const k = kernel;
  kernel = null;
  manager = null;
  if (k && !k.isDisposed) await k.shutdown();
  for (const c of connections.splice(0)) if (!c.isDisposed) c.dispose();
}

declare global {
  interface Window {
    hopscopeLive?: {
      start: typeof start;
      execute: typeof execute;
      restore: typeof restore;
      valueKind: typeof valueKind;
      shutdown: typeof shutdown;
    };
  }
}

window.hopscopeLive = { start, execute, restore, valueKind, shutdown };
