// tslab's TypeScript converter in a worker thread, called synchronously from the kernel's thread. Building the
// converter (the TypeScript program with lib.d.ts, @types/node and the library's declarations) takes 1–3 s of
// synchronous work; on the kernel's thread it blocked kernel_info, or, after kernel_info, the frontend's
// nudges (issue 16: "Nudge attempt 10"). Here it is built in parallel from process start, the event loop never
// waits for it, and a cell, completion or inspection waits only for what is left of the build.
//
// tslab's executor calls the converter synchronously, so the calls are synchronous too: post the request on a
// MessagePort, Atomics.wait on a shared flag the worker raises when its answer is posted, then
// receiveMessageOnPort takes the answer without the event loop.
import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from 'node:worker_threads';
import type { CompletionInfo, ConvertResult, Converter } from 'tslab/dist/converter';
import type { ConverterSet } from 'tslab/dist/executor';
import { CELL_GLOBAL_TYPES, tslabTypeScript } from './cell-types';

/** A call that takes longer than this is taken for a dead worker. */
const CALL_TIMEOUT_MS = 180_000;

// Plain JavaScript (a worker does not inherit tsx's loader).
const WORKER = `
const { workerData } = require('node:worker_threads');
const { port, flag, converterModule, isBrowser, warmCode, typeScript, globalTypes } = workerData;
const signal = new Int32Array(flag);
let conv = null;
let failure = null;
try {
  // Automatic @types inclusion lists each type root's folders (host.getDirectories, bound when the converter's
  // host is made): only cell-types.ts CELL_GLOBAL_TYPES are listed. This worker's TypeScript serves tslab alone.
  const sys = require(typeScript).sys;
  const listDirectories = sys.getDirectories.bind(sys);
  sys.getDirectories = (dir) => (/[\\/]node_modules[\\/]@types[\\/]?$/.test(dir) ? listDirectories(dir).filter((d) => globalTypes.includes(d)) : listDirectories(dir));
  conv = require(converterModule).createConverter({ isJS: false, isBrowser });
  // Loading every declaration the cells will see (the prelude's imports) is the slow part: do it now.
  if (warmCode) conv.convert('', warmCode);
} catch (e) {
  failure = e;
}
require('node:worker_threads').parentPort.postMessage({ ready: true });
port.on('message', ({ method, args }) => {
  let reply;
  try {
    if (failure) throw failure;
    let result = conv[method](...args);
    if (method === 'complete' && result) result = { start: result.start, end: result.end, candidates: result.candidates };
    reply = { result };
  } catch (e) {
    reply = { error: { name: e && e.name, message: e && e.message ? e.message : String(e), stack: e && e.stack } };
  }
  port.postMessage(reply);
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
});
`;

export class WorkerConverter implements Converter {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly flag = new Int32Array(new SharedArrayBuffer(4));
  private closed = false;
  /** Resolves when the converter is built (or failed to build: calls then throw its error). */
  readonly ready: Promise<void>;

  constructor(isBrowser: boolean, warmCode: string | null) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(WORKER, {
      eval: true,
      workerData: {
        port: port2,
        flag: this.flag.buffer,
        converterModule: require.resolve('tslab/dist/converter'),
        isBrowser,
        warmCode,
        typeScript: tslabTypeScript(),
        globalTypes: CELL_GLOBAL_TYPES,
      },
      transferList: [port2],
    });
    this.ready = new Promise<void>((resolve) => {
      this.worker.once('message', () => resolve());
      this.worker.once('error', () => resolve());
      this.worker.once('exit', () => resolve());
    });
    // Neither keeps the kernel process alive.
    this.worker.unref();
    this.port.unref();
  }

  private call<T>(method: keyof Converter, args: unknown[]): T {
    if (this.closed) throw new Error('the TypeScript converter is closed');
    Atomics.store(this.flag, 0, 0);
    this.port.postMessage({ method, args });
    const deadline = Date.now() + CALL_TIMEOUT_MS;
    while (Atomics.load(this.flag, 0) === 0) {
      if (Date.now() > deadline) throw new Error(`the TypeScript worker did not answer ${method} within ${CALL_TIMEOUT_MS / 1000} s`);
      Atomics.wait(this.flag, 0, 0, 1000);
    }
    const got = receiveMessageOnPort(this.port)?.message as { result?: T; error?: { name?: string; message: string; stack?: string } } | undefined;
    if (!got) throw new Error(`the TypeScript worker raised its flag for ${method} without an answer`);
    if (got.error) {
      const e = new Error(got.error.message);
      e.name = got.error.name ?? 'Error';
      e.stack = got.error.stack;
      throw e;
    }
    return got.result as T;
  }

  convert(prevDecl: string, src: string): ConvertResult {
    return this.call('convert', [prevDecl, src]);
  }

  inspect(prevDecl: string, src: string, position: number): ReturnType<Converter['inspect']> {
    return this.call('inspect', [prevDecl, src, position]);
  }

  complete(prevDecl: string, src: string, position: number): CompletionInfo {
    return this.call('complete', [prevDecl, src, position]);
  }

  addModule(name: string, content: string, meta?: unknown): ReturnType<Converter['addModule']> {
    return this.call('addModule', [name, content, meta]);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    void this.worker.terminate();
    this.port.close();
  }
}

/** The node converter in a worker, started now; the browser one (rarely used) on first use, also in a worker. */
export class WorkerConverters implements ConverterSet {
  private n: WorkerConverter | null = null;
  private b: WorkerConverter | null = null;

  /** Starts building the node converter; `warmCode` is converted once in the worker to load its types. */
  start(warmCode: string | null): void {
    this.n ??= new WorkerConverter(false, warmCode);
  }

  /** Resolves when the node converter is built: awaiting it keeps the event loop free meanwhile. */
  ready(): Promise<void> {
    return (this.node as WorkerConverter).ready;
  }

  get node(): Converter {
    return (this.n ??= new WorkerConverter(false, null));
  }

  get browser(): Converter {
    return (this.b ??= new WorkerConverter(true, null));
  }

  close(): void {
    this.n?.close();
    this.b?.close();
  }
}
