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
import type { ExecuteResult, LiveOutput, RestoreResult } from './results';

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


/**
 * The classic server (notebook 6.4) speaks only the legacy kernel websocket protocol. @jupyterlab/services 7
 * first offers the v1 subprotocol, which that server does not answer: Chromium fails the handshake and services
 * reconnects at once with the same client id, while the server may still hold the failed socket as that
 * session (notebook's `_register_session` then waits on the stale one). Offering no subprotocol is what
 * services itself falls back to; doing it from the start connects once.
 */
class LegacyWebSocket extends WebSocket {
  constructor(url: string | URL, _protocols?: string | string[]) {
    super(url);
  }
}

let manager: LiveManager | null = null;
let kernel: Kernel.IKernelConnection | null = null;
const connections: Kernel.IKernelConnection[] = [];
const kernels = new KernelManager({ serverSettings: settings() });

function settings(): ServerConnection.ISettings {
  const baseUrl = `${location.origin}/`;
  return ServerConnection.makeSettings({
    baseUrl,
    wsUrl: baseUrl.replace(/^http/, 'ws'),
    token: '',
    appendToken: false,
    WebSocket: LegacyWebSocket,
  });
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Rejects with `what` named when `p` has not settled within `ms` (a stuck step fails, it does not hang the page). */
function within<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** How long one kernel_info round waits before asking again. */
const KERNEL_INFO_RETRY_MS = 8_000;
const KERNEL_INFO_TRIES = 4;

/**
 * Waits until a kernel connection is connected and has its kernel_info; answers how many kernel_info requests
 * it took. @jupyterlab/services resolves `info` only when the reply *and* its iopub `idle` arrived; a new
 * websocket whose iopub subscription is not yet established when the kernel answers misses that `idle`, and
 * `info` never resolves (services' own FIXME in KernelConnection._updateConnectionStatus: "kernelInfo may not
 * resolve ... it may be preferable to retry kernelInfo"). The classic server skips its iopub "nudge" when it
 * believes the kernel busy, so a loaded machine can hit this: ask again, as that comment suggests.
 */
async function ready(k: Kernel.IKernelConnection, what: string): Promise<number> {
  if (k.connectionStatus !== 'connected') {
    const connected = new Promise<void>((resolve) => {
      const on = (_: unknown, s: Kernel.ConnectionStatus) => {
        if (s !== 'connected') return;
        k.connectionStatusChanged.disconnect(on);
        resolve();
      };
      k.connectionStatusChanged.connect(on);
    });
    await within(`${what}: websocket connection`, connected, 45_000);
  }
  for (let tries = 1; ; tries++) {
    try {
      await within(`${what}: kernel_info`, k.info, KERNEL_INFO_RETRY_MS);
      return tries;
    } catch (e) {
      if (tries >= KERNEL_INFO_TRIES) throw new Error(`${message(e)} after ${tries} requests`);
      void k.requestKernelInfo().catch(() => {});
    }
  }
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
  await ready(kernel, 'first connection');
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
async function restore(ids: string[]): Promise<RestoreResult> {
  if (!kernel) throw new Error('start() first');
  const t0 = performance.now();
  const steps: Record<string, number> = {};
  const mark = (name: string) => (steps[name] = Math.round(performance.now() - t0));
  const { k, kernelInfoRequests, attempts } = await connectAgain(kernel);
  mark('connected');
  const m = new LiveManager(k, false);
  // ipywidgets bounds the control comm itself (4 s, then the per-comm fallback, which has no bound).
  await within('second connection: widget states', m.loadFromKernel(), 30_000);
  mark('states');
  // What the fallback path would have asked: the kernel's open jupyter.widget comms (comm_info_request).
  const commInfo = Object.keys(await within('second connection: comm_info', m._get_comm_info(), 20_000));
  mark('commInfo');
  const failures: string[] = [];
  const restored = ids.filter((id) => m.has_model(id));
  await Promise.all(
    restored.map(async (id) => {
      const host = document.createElement('div');
      host.className = 'live-restored';
      host.dataset.modelId = id;
      outputArea('restored').append(host);
      await within(`second connection: drawing ${id}`, show(m, id, host), 30_000).catch((e) => void failures.push(`model ${id}: ${message(e)}`));
    }),
  );
  mark('drawn');
  return { restored, viaControlComm: !m.usedFallback, commInfo, failures, kernelInfoRequests, attempts, steps };
}

/**
 * A second connection to `of`'s kernel, ready; a connection that does not come up is dropped and made again
 * with a new client id, as a reloaded page would (twice at most; the answer says how many it took).
 */
async function connectAgain(of: Kernel.IKernelConnection): Promise<{ k: Kernel.IKernelConnection; kernelInfoRequests: number; attempts: number }> {
  const errors: string[] = [];
  for (let attempts = 1; attempts <= 2; attempts++) {
    const k = kernels.connectTo({ model: { id: of.id, name: of.name }, handleComms: true });
    connections.push(k);
    try {
      return { k, kernelInfoRequests: await ready(k, `second connection (attempt ${attempts})`), attempts };
    } catch (e) {
      errors.push(message(e));
      k.dispose();
    }
  }
  throw new Error(errors.join('; '));
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
