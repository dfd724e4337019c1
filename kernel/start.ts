// Wires a running kernel process: sockets, handler, tslab executor, the `hs` global, stdout/stderr to iopub,
// tslab.display, SIGINT → interrupt.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TsRunner } from './cell-runner';
import { cellTypesDir } from './cell-types';
import { WorkerConverters } from './converter-worker';
import { currentSignal } from './execution';
import { KernelHandler } from './handler';
import { saveFigure } from './figure/save';
import { createHs } from './hs';
import { REPO_ROOT } from './library';
import { log } from './log';
import { stopWhenOrphaned } from './parent-poller';
import { defaultMagics } from './magics';
import { HopscopeServer, SocketTransport } from './server';
import { widgets } from './widgets';

function version(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

type Write = typeof process.stdout.write;

function redirect(stream: NodeJS.WriteStream, name: 'stdout' | 'stderr', handler: KernelHandler): void {
  const raw = stream.write.bind(stream) as (s: string) => boolean;
  stream.write = ((chunk: string | Uint8Array, enc?: unknown, cb?: unknown) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    // Before the first execution there is no cell to write to: keep it in the kernel's log.
    if (handler.iopub.parent) handler.iopub.stream(name, text);
    else raw(text);
    const done = typeof enc === 'function' ? enc : cb;
    if (typeof done === 'function') (done as () => void)();
    return true;
  }) as Write;
}

export async function startKernel(configPath: string): Promise<void> {
  const started = Date.now();
  const transport = new SocketTransport();
  const convs = new WorkerConverters();
  const holder: { handler: KernelHandler | null } = { handler: null };
  const hs = createHs({ signal: currentSignal, widgets, display: (v) => holder.handler?.display(v), saveFigure }, { progress: (label) => holder.handler?.progressBar(label) ?? null });
  // A global too, so plain JavaScript (and code required from cells) reaches the same object.
  Object.defineProperty(globalThis, 'hs', { value: hs, configurable: true, writable: true });
  // The generated declarations describe src/index.ts: not the stand-in library a test names.
  const typed = !process.env.HOPSCOPE_LIBRARY && process.env.HOPSCOPE_CELL_TYPES !== 'off';
  const runner = new TsRunner(process.cwd(), convs, { hs, widgets }, typed ? cellTypesDir() : null);
  let server: HopscopeServer | null = null;
  let shuttingDown = false;
  const handler = new KernelHandler({
    transport,
    runner,
    magics: defaultMagics(),
    version: version(),
    onShutdown: () => {
      shuttingDown = true;
      void transport.flush().finally(() => {
        transport.close();
        server?.close();
        setTimeout(() => process.exit(0), 50);
      });
    },
  });
  holder.handler = handler;

  // tslab.display in cells writes through this process-wide hook.
  const tslabJupyter = require('tslab/dist/jupyter') as { lastWriteDisplayData: unknown };
  tslabJupyter.lastWriteDisplayData = (data: Record<string, unknown>, update: boolean) =>
    handler.iopub.publish(update ? 'update_display_data' : 'display_data', data);

  redirect(process.stdout, 'stdout', handler);
  redirect(process.stderr, 'stderr', handler);
  process.on('SIGINT', () => handler.interrupt());
  process.on('uncaughtException', (e) => {
    log(`uncaught exception: ${e.stack ?? e.message}`);
    if (handler.iopub.parent) handler.iopub.stream('stderr', `Uncaught ${e.stack ?? e.message}\n`);
  });
  process.on('unhandledRejection', (r) => {
    // tslab's socket loops end with "Socket is closed" when we close them at shutdown.
    if (shuttingDown) return;
    const text = r instanceof Error ? (r.stack ?? r.message) : String(r);
    log(`unhandled rejection: ${text}`);
    if (handler.iopub.parent) handler.iopub.stream('stderr', `Unhandled promise rejection: ${text}\n`);
  });

  // tslab's converter (1–3 s of synchronous TypeScript work) is built from now on in a worker thread, with the
  // types the cell prelude loads: kernel_info and the frontend's nudges are answered meanwhile, and the first
  // cell waits only for what is left of the build (issue 16: "Nudge attempt 10").
  convs.start(runner.preludeCode());
  stopWhenOrphaned(() => handler.interrupt());

  server = new HopscopeServer(handler, transport, configPath);
  await server.init();
  log(`listening (pid ${process.pid}; ${Math.round(process.uptime() * 1000)} ms after process start, ${Date.now() - started} ms in startKernel; cwd ${process.cwd()})`);
}
