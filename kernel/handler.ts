// The kernel's request → reply logic, apart from ZeroMQ: a decoded message comes in, messages go out through a
// Transport. Extends tslab's JupyterHandlerImpl (kernel_info, completion, inspection, is_complete) and replaces
// its execution: magics, execute_input/execute_result/error, comms and widgets, interrupts via AbortSignal.
import { JupyterHandlerImpl } from 'tslab/dist/jupyter';
import type { CellRunner } from './cell-runner';
import { splitCell } from './cell-split';
import { CommManager } from './comms';
import { completeSpecial, inspectSpecial, maskMagics } from './completion';
import { KernelInterrupt, errorContent, mimeBundle } from './display';
import { setCurrentSignal } from './execution';
import { Iopub } from './iopub';
import { History } from './history';
import { type Library, loadLibrary } from './library';
import { log } from './log';
import { ProgressBar } from './progress-bar';
import { type Content, type ErrorContent, MessageFactory, type Transport, type WireMessage } from './messages';
import type { MagicContext, MagicOutput, MagicRegistry, MagicSession } from './magics/registry';
import { CellFailure, UsageError } from './magics/registry';
import { saveFigure } from './figure/save';
import { SerialQueue } from './serial-queue';
import { WidgetHub, attachWidgetHub, widgets } from './widgets';

const TSLAB_VERSION = (require('tslab/package.json') as { version: string }).version;

/** A cell whose code ignores the abort signal gets this long before the kernel stops waiting for it. */
export const INTERRUPT_GRACE_MS = 1000;

type Outcome = { ok: true; bundle: Record<string, unknown> | null } | { ok: false; error: ErrorContent };

export interface KernelOptions {
  transport: Transport;
  runner: CellRunner;
  magics: MagicRegistry;
  /** The library loader (tests pass a stand-in). */
  library?: (what: string) => Library;
  onShutdown?: (restart: boolean) => void;
  version?: string;
}

/** One execution in progress: its AbortSignal (soft interrupt) and hard stop (stop waiting). */
class Execution {
  readonly controller = new AbortController();
  readonly hardStop: Promise<never>;
  private stopHard: (e: Error) => void = () => {};
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly runner: CellRunner) {
    this.hardStop = new Promise<never>((_, reject) => (this.stopHard = reject));
    this.hardStop.catch(() => {});
  }

  interrupt(): void {
    if (!this.controller.signal.aborted) {
      this.controller.abort(new KernelInterrupt());
      this.timer = setTimeout(() => this.hard(), INTERRUPT_GRACE_MS);
    } else {
      this.hard(); // a second interrupt does not wait
    }
  }

  private hard(): void {
    this.stopHard(new KernelInterrupt());
    this.runner.interrupt();
  }

  done(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}

export class KernelHandler extends JupyterHandlerImpl {
  readonly factory = new MessageFactory();
  readonly iopub: Iopub;
  readonly comms: CommManager;
  readonly widgetHub: WidgetHub;
  readonly session: MagicSession = { model: null, modelSource: null, data: undefined, datasets: new Map() };
  readonly history = new History();
  private readonly queue = new SerialQueue();
  private running: Execution | null = null;
  private count = 0;
  private readonly transport: Transport;
  private readonly runner: CellRunner;
  private readonly magics: MagicRegistry;
  private readonly library: (what: string) => Library;

  constructor(private readonly opts: KernelOptions) {
    super(opts.runner.executor, false);
    this.transport = opts.transport;
    this.runner = opts.runner;
    this.magics = opts.magics;
    this.library = opts.library ?? loadLibrary;
    this.iopub = new Iopub(opts.transport, this.factory);
    this.comms = new CommManager(this.iopub);
    this.widgetHub = new WidgetHub(this.comms);
    attachWidgetHub(this.widgetHub);
  }

  override handleKernel(): ReturnType<JupyterHandlerImpl['handleKernel']> {
    const base = super.handleKernel();
    // tslab reports a fixed "3.7.2"; the compiler it really uses says its version.
    const ts = require('@tslab/typescript-for-tslab') as { version: string };
    return {
      ...base,
      implementation: 'hopscope',
      implementation_version: this.opts.version ?? '0.0.0',
      // JupyterLab 4 picks the editor grammar with findBest(codemirror_mode): by name, then MIME, then extension
      // (@jupyterlab/codemirror language.ts), and its TypeScript language is named 'TypeScript'. tslab's
      // {name: 'javascript', typescript: true} only worked in CodeMirror 5 (the classic notebook).
      language_info: {
        name: 'typescript',
        version: ts.version,
        mimetype: 'text/typescript',
        file_extension: '.ts',
        codemirror_mode: 'typescript',
        pygments_lexer: 'typescript',
      },
      banner: `hopscope ${this.opts.version ?? ''}: TypeScript (tslab ${TSLAB_VERSION}) with magics (%lsmagic) and widgets; the library is \`hs\``,
      help_links: [{ text: 'tslab, the TypeScript kernel this extends', url: 'https://github.com/yunabe/tslab' }],
    };
  }

  /** SIGINT, or interrupt_request on control. */
  interrupt(): void {
    this.running?.interrupt();
  }

  /** Handles one decoded request from shell or control. Never throws. */
  async handle(msg: WireMessage, channel: 'shell' | 'control'): Promise<void> {
    const type = msg.header.msg_type;
    if (type === 'execute_request') return this.enqueueExecute(msg);
    this.iopub.status('busy', msg);
    try {
      this.dispatch(msg, channel);
    } catch (e) {
      log(`${type} on ${channel} failed: ${(e as Error)?.stack ?? String(e)}`);
    } finally {
      this.iopub.status('idle', msg);
    }
  }

  private reply(req: WireMessage, channel: 'shell' | 'control', type: string, content: Content): void {
    this.transport.send(channel, this.factory.reply(req, type, content));
  }

  private dispatch(msg: WireMessage, channel: 'shell' | 'control'): void {
    const c = msg.content;
    switch (msg.header.msg_type) {
      case 'kernel_info_request':
        // tslab's converter is built in a worker from process start (start.ts), not here: built after the
        // handshake it blocked the event loop for seconds while the frontend was nudging with kernel_info.
        return this.reply(msg, channel, 'kernel_info_reply', { status: 'ok', ...this.handleKernel() });
      case 'is_complete_request':
        return this.reply(msg, channel, 'is_complete_reply', { ...this.handleIsComplete({ code: String(c.code ?? '') }) });
      case 'complete_request':
      case 'inspect_request':
        return this.replyWithTs(msg, channel);
      case 'history_request':
        return this.reply(msg, channel, 'history_reply', { status: 'ok', history: this.history.query(c) });
      case 'comm_info_request':
        return this.reply(msg, channel, 'comm_info_reply', this.comms.info(c.target_name as string | undefined));
      case 'comm_open':
      case 'comm_msg':
      case 'comm_close':
        return this.withParent(msg, () => this.comms.handle(msg));
      case 'interrupt_request':
        this.interrupt();
        return this.reply(msg, channel, 'interrupt_reply', { status: 'ok' });
      case 'shutdown_request': {
        const restart = c.restart === true;
        this.reply(msg, channel, 'shutdown_reply', { status: 'ok', restart });
        this.running?.interrupt();
        this.comms.closeAll();
        this.opts.onShutdown?.(restart);
        return;
      }
      default:
        log(`unsupported message type ${msg.header.msg_type} on ${channel}; ignored`);
    }
  }

  /** Completion and inspection: magics and hook points here (completion.ts), the rest through tslab's TypeScript service. */
  private replyWithTs(msg: WireMessage, channel: 'shell' | 'control'): void {
    const code = String(msg.content.code ?? '');
    const pos = Number(msg.content.cursor_pos ?? code.length);
    const complete = msg.header.msg_type === 'complete_request';
    const type = complete ? 'complete_reply' : 'inspect_reply';
    try {
      const special = complete ? completeSpecial(code, pos, this.magics, this.session.model) : inspectSpecial(code, pos, this.magics);
      if (special) return this.reply(msg, channel, type, special);
      const ts = maskMagics(code);
      if (ts === null) {
        const none = complete ? { status: 'ok', matches: [], cursor_start: pos, cursor_end: pos, metadata: {} } : { status: 'ok', found: false, data: {}, metadata: {} };
        return this.reply(msg, channel, type, none);
      }
      this.runner.warm();
      const content = complete
        ? this.handleComplete({ code: ts, cursor_pos: pos })
        : this.handleInspect({ code: ts, cursor_pos: pos, detail_level: msg.content.detail_level === 1 ? 1 : 0 });
      this.reply(msg, channel, type, { ...content });
    } catch (e) {
      this.reply(msg, channel, type, { status: 'error', ...errorContent(e) });
    }
  }

  /** Runs `fn` with iopub output attributed to `msg` (comm handlers answer the comm message they handle). */
  private withParent(msg: WireMessage, fn: () => void): void {
    const prev = this.iopub.parent;
    this.iopub.parent = msg;
    try {
      fn();
    } finally {
      this.iopub.parent = prev;
    }
  }

  private enqueueExecute(req: WireMessage): Promise<void> {
    return this.queue.add(
      () => this.execute(req),
      () => {
        // Aborted because an earlier cell failed (stop_on_error), like ipykernel.
        this.iopub.status('busy', req);
        this.transport.send('shell', this.factory.reply(req, 'execute_reply', { status: 'aborted', execution_count: this.count }));
        this.iopub.status('idle', req);
      },
    );
  }

  private async execute(req: WireMessage): Promise<void> {
    const c = req.content;
    const code = String(c.code ?? '');
    const silent = c.silent === true;
    // Output of this execution, and of what it starts, goes to this request from now on.
    this.iopub.parent = req;
    this.iopub.status('busy', req);
    const store = !silent && c.store_history !== false;
    if (store) this.count++;
    const count = this.count;
    if (store) this.history.add(count, code);
    if (!silent) this.iopub.publish('execute_input', { code, execution_count: count });
    const ex = new Execution(this.runner);
    this.running = ex;
    setCurrentSignal(ex.controller.signal);
    let outcome: Outcome;
    try {
      outcome = await this.runCell(code, ex);
    } catch (e) {
      outcome = { ok: false, error: e instanceof CellFailure ? e.content : errorContent(e) };
    } finally {
      ex.done();
      this.running = null;
    }
    try {
      if (outcome.ok) {
        if (outcome.bundle && !silent) this.iopub.publish('execute_result', { execution_count: count, data: outcome.bundle, metadata: {} });
        if (outcome.bundle && store) this.history.setOutput(count, String(outcome.bundle['text/plain'] ?? ''));
        const user_expressions = await this.userExpressions(c.user_expressions);
        this.transport.send('shell', this.factory.reply(req, 'execute_reply', { status: 'ok', execution_count: count, payload: [], user_expressions }));
      } else {
        this.iopub.publish('error', { ...outcome.error });
        this.transport.send('shell', this.factory.reply(req, 'execute_reply', { status: 'error', execution_count: count, ...outcome.error }));
        if (c.stop_on_error !== false) this.queue.abortPending();
      }
    } finally {
      this.iopub.status('idle', req);
    }
  }

  /**
   * `user_expressions` of an execute_request, evaluated after the cell as ipykernel does: each name gets a mime
   * bundle (`status: 'ok'`) or its own error; one failing expression does not fail the cell.
   */
  private async userExpressions(exprs: unknown): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    if (!exprs || typeof exprs !== 'object') return out;
    for (const [name, expr] of Object.entries(exprs as Record<string, unknown>)) {
      try {
        const r = await this.runner.run(`(${String(expr)}\n)`);
        out[name] = r.ok
          ? { status: 'ok', data: r.hasValue ? safeBundle(r.value) : { 'text/plain': 'undefined' }, metadata: {} }
          : { status: 'error', ...r.error };
      } catch (e) {
        out[name] = { status: 'error', ...errorContent(e) };
      }
    }
    return out;
  }

  private async runCell(code: string, ex: Execution): Promise<Outcome> {
    let last: Outcome = { ok: true, bundle: null };
    for (const seg of splitCell(code)) {
      if (ex.controller.signal.aborted) throw new KernelInterrupt();
      if (seg.kind === 'ts') {
        const r = await this.runner.run(seg.code, seg.line);
        if (!r.ok) return r;
        last = { ok: true, bundle: r.hasValue ? safeBundle(r.value) : null };
      } else {
        const out = await this.runMagic(seg.name, seg.args, seg.body, ex);
        last = { ok: true, bundle: out.show ? (out.bundle ?? safeBundle(out.value)) : null };
      }
    }
    return last;
  }

  private async runMagic(name: string, args: string, body: string | undefined, ex: Execution): Promise<MagicOutput> {
    const isCell = body !== undefined;
    const m = this.magics.get(name, isCell);
    if (!m) {
      const other = this.magics.get(name, !isCell);
      const hint = other ? `; it is a ${isCell ? 'line' : 'cell'} magic: ${isCell ? '%' : '%%'}${name}` : '; %lsmagic lists them';
      throw new UsageError(`unknown magic ${isCell ? '%%' : '%'}${name}${hint}`);
    }
    const parsed = this.magics.parse(m, args);
    if (parsed.kind === 'help') return { show: true, bundle: { 'text/plain': parsed.text } };
    const out = await m.run(parsed, this.magicContext(ex), body);
    // `--save FILE` (experiment magics): the figure of the result, written by the kernel (headless runs too).
    const save = parsed.opts.save;
    if (typeof save === 'string' && parsed.opts.dryRun !== true && out.value !== undefined) {
      this.iopub.stream('stdout', `figure saved to ${await saveFigure(out.figure ?? out.value, save)}\n`);
    }
    return out;
  }

  private magicContext(ex: Execution): MagicContext {
    return {
      lib: (what) => this.library(what),
      signal: ex.controller.signal,
      hardStop: ex.hardStop,
      session: this.session,
      widgets,
      stdout: (text) => this.iopub.stream('stdout', text),
      display: (value) => this.display(value),
      keep: async (value, as, type) => {
        await this.runner.bind('_', value, type);
        if (as) await this.runner.bind(as, value, type);
      },
      lookup: (name) => this.runner.lookup(name),
      background: (fn) => this.background(fn),
      registry: this.magics,
      run: async (code) => {
        const out = await this.runCell(code, ex);
        if (!out.ok) throw new CellFailure(out.error);
        return out.bundle;
      },
    };
  }

  /** A progress bar that updates in place in the output of the request being executed. */
  progressBar(label: string): ProgressBar | null {
    if (!this.iopub.parent) return null;
    return new ProgressBar((msgType, content) => this.iopub.publish(msgType, content), label);
  }

  /** display_data of any value, in the output of the request being executed. */
  display(value: unknown): void {
    this.iopub.publish('display_data', { data: safeBundle(value), metadata: {}, transient: {} });
  }

  /**
   * Work started by a frontend event (a widget click): queued behind executions, output to that event's
   * request, interruptible like a cell.
   */
  private background(fn: (signal: AbortSignal) => Promise<void>): void {
    const parent = this.iopub.parent;
    void this.queue.add(async () => {
      const prev = this.iopub.parent;
      this.iopub.parent = parent;
      const ex = new Execution(this.runner);
      this.running = ex;
      setCurrentSignal(ex.controller.signal);
      try {
        await Promise.race([fn(ex.controller.signal), ex.hardStop]);
      } catch (e) {
        log(`background task failed: ${(e as Error)?.stack ?? String(e)}`);
      } finally {
        ex.done();
        this.running = null;
        this.iopub.parent = prev;
      }
    });
  }

  override close(): void {
    attachWidgetHub(null);
    super.close();
  }
}

function safeBundle(value: unknown): Record<string, unknown> {
  try {
    return mimeBundle(value);
  } catch (e) {
    return { 'text/plain': `<display failed: ${(e as Error)?.message ?? String(e)}>` };
  }
}
