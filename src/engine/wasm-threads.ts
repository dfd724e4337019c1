// Multi-threaded WebAssembly backend for Node.
// tfjs-backend-wasm only enables its threaded build in browsers (WASM_HAS_MULTITHREAD_SUPPORT is false
// under Node, and the stock init hands Emscripten a `blob:` worker URL that worker_threads rejects).
// We re-register the `wasm` backend with a factory that loads the threaded-SIMD build from real files,
// so XNNPACK gets a thread pool. See ../shared/reference/engine.md ("Threads in Node").
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { registerWasmKernels } from './wasm-kernels';

interface EmscriptenModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  tfjs?: Record<string, unknown>;
  /** Emscripten's pthread bookkeeping (exported by this build): the worker_threads Workers behind the pool. */
  PThread?: { runningWorkers?: { unref?(): void }[]; unusedWorkers?: { unref?(): void }[] };
}

let lastModule: EmscriptenModule | null = null;

/** Pthread workers of the running threaded module (loaded or running), for tests; null before one starts. */
export function wasmWorkerCount(): number | null {
  const p = lastModule?.PThread;
  return p ? (p.runningWorkers?.length ?? 0) + (p.unusedWorkers?.length ?? 0) : null;
}

/**
 * Lets the process exit while the pool is alive. Emscripten refs a worker while it runs a pthread (its
 * spawnThread: `worker.runPthread = () => { if (ENVIRONMENT_IS_NODE) worker.ref(); ... }`), and XNNPACK's
 * pool threads run for the life of the backend, so a script that used the library never ended on its own
 * (bench:load's children hung after printing their result). The pool threads wait on futexes in shared
 * memory, not on the event loop, so an unref'd pool still works while the process runs.
 */
function unrefPool(module: EmscriptenModule): void {
  const p = module.PThread;
  for (const w of [...(p?.runningWorkers ?? []), ...(p?.unusedWorkers ?? [])]) w.unref?.();
}
type ModuleFactory = (cfg: Record<string, unknown>) => Promise<EmscriptenModule>;

function wasmOutDir(): string {
  return path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'wasm-out');
}

let workerPath: string | null = null;

/** Writes the Emscripten pthread worker source to a real file once per process (worker_threads needs a path). */
function workerFile(): string {
  // Once: every engine start used to write a new copy and add a process 'exit' listener (a warning at 11).
  if (workerPath && fs.existsSync(workerPath)) return workerPath;
  const { wasmWorkerContents } = require(path.join(wasmOutDir(), 'tfjs-backend-wasm-threaded-simd.worker.js')) as {
    wasmWorkerContents: string;
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-wasm-'));
  const file = path.join(dir, 'tfjs-backend-wasm-threaded-simd.worker.js');
  // The source carries literal newlines inside string literals (it was a template string): re-escape them.
  fs.writeFileSync(file, wasmWorkerContents.replace(/\n/g, '\\n'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  workerPath = file;
  return file;
}

/**
 * Each Emscripten pthread is a worker_threads Worker whose stdout and stderr Node pipes into ours: one
 * listener per live worker on process.stdout/stderr (10 with this build: its pool of 8 plus XNNPACK's), plus
 * whatever already pipes there (node's test runner does). Bounded, not a leak, but past the default limit of
 * 10 Node prints MaxListenersExceededWarning; raise the limit once by that bound so a real leak still warns.
 */
const WASM_WORKER_PIPES = 16;
let pipesAllowed = false;
function allowWorkerPipes(): void {
  if (pipesAllowed) return;
  pipesAllowed = true;
  for (const s of [process.stdout, process.stderr]) s.setMaxListeners(s.getMaxListeners() + WASM_WORKER_PIPES);
}

/**
 * The Emscripten module factory with its pthread pool sized to the threads XNNPACK will start. The build
 * hard-codes a pool of 8 workers (`PThread.initMainThread: var pthreadPoolSize=8`), each a worker_threads
 * Worker that loads the module before the engine starts: ~0.8 s and ~1.7 s of CPU per process on 2 cores,
 * for 1 worker used (XNNPACK's pool of T threads runs T − 1 pthreads beside the caller). Every test file,
 * CLI command and kernel paid it. The pool stays at least as large as the pthreads ever created, because a
 * pthread_create with no loaded worker would wait on the main thread XNNPACK is blocking (Emscripten's
 * PTHREAD_POOL_SIZE rule). The pthread workers load the unmodified file; only the main thread reads the size.
 */
const factories = new Map<number, ModuleFactory>();
function loadFactory(mainScript: string, poolSize: number): ModuleFactory {
  // Once per pool size and process, as `require` cached the stock factory (engine restarts reuse it).
  const known = factories.get(poolSize);
  if (known) return known;
  const factory = compileFactory(mainScript, poolSize);
  factories.set(poolSize, factory);
  return factory;
}

function compileFactory(mainScript: string, poolSize: number): ModuleFactory {
  const source = fs.readFileSync(mainScript, 'utf8');
  const stock = 'var pthreadPoolSize=8;';
  if (!source.includes(stock)) return require(mainScript) as ModuleFactory; // another build: keep its own pool
  const Module = require('node:module') as {
    new (id: string): { filename: string; paths: string[]; exports: unknown; _compile(src: string, file: string): void };
    _nodeModulePaths(dir: string): string[];
  };
  const m = new Module(mainScript);
  m.filename = mainScript;
  m.paths = Module._nodeModulePaths(path.dirname(mainScript));
  m._compile(source.replace(stock, `var pthreadPoolSize=${poolSize};`), mainScript);
  return m.exports as ModuleFactory;
}

/**
 * Registers a threaded `wasm` backend (replacing the stock single-threaded one).
 * `threads` is the XNNPACK pool size; Emscripten caps it at half the CPUs it sees, so we report
 * 2x the wanted count while the module instantiates.
 */
export function registerThreadedWasm(threads: number, priority = 3): void {
  const wasmPkg = require('@tensorflow/tfjs-backend-wasm') as {
    BackendWasm: new (m: EmscriptenModule) => tf.KernelBackend;
    setThreadsCount(n: number): void;
  };
  const out = wasmOutDir();
  const mainScript = path.join(out, 'tfjs-backend-wasm-threaded-simd.js');
  const factory = loadFactory(mainScript, Math.max(threads, 1));
  if (tf.findBackendFactory('wasm') != null) tf.removeBackend('wasm');
  registerWasmKernels();
  tf.registerBackend(
    'wasm',
    async () => {
      const worker = workerFile();
      allowWorkerPipes();
      // Patch the real module object (an ES namespace import may be a copy).
      const osModule = require('node:os') as { cpus: () => os.CpuInfo[] };
      const realCpus = osModule.cpus;
      const fakeCount = Math.max(2 * threads, 1);
      osModule.cpus = () => {
        const c = realCpus();
        return Array.from({ length: fakeCount }, (_, i) => c[i % c.length]);
      };
      try {
        const module = await factory({
          locateFile: (p: string) => (p.endsWith('.worker.js') ? worker : path.join(out, p)),
          mainScriptUrlOrBlob: mainScript,
        });
        module.tfjs = {
          init: module.cwrap('init', null, []),
          initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
          getThreadsCount: module.cwrap('get_threads_count', 'number', []),
          registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
          disposeData: module.cwrap('dispose_data', null, ['number']),
          dispose: module.cwrap('dispose', null, []),
        };
        wasmPkg.setThreadsCount(threads);
        const backend = new wasmPkg.BackendWasm(module); // starts XNNPACK's pool (init_with_threads_count)
        unrefPool(module);
        lastModule = module;
        return backend;
      } finally {
        osModule.cpus = realCpus;
      }
    },
    priority,
  );
}
