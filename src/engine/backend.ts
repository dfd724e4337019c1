// Backend choice: tfjs-node-gpu, tfjs-node, multi-threaded WebAssembly (the default that always works), pure-JS cpu.
// The first that loads wins unless HOPSCOPE_BACKEND or the `backend` option forces one.
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { HopscopeError } from '../errors';
import { disableNativeMatMul, enableNativeMatMul, isBuiltinGemm, nativeMatMulInfo, type NativeMatMulInfo } from './native-matmul';
import { allowNativeOps, nativeOpsInfo, type NativeOpsInfo } from './native-ops';
import { registerThreadedWasm } from './wasm-threads';

import { BACKEND_ORDER, parseBackend, parseEngineConfig, parseNative, setEngineConfig, type BackendName, type NativeMode } from './config';

export { BACKEND_ORDER, type BackendName, type NativeMode } from './config';

export interface EngineInfo {
  /** What we asked for ("auto" or a forced name). */
  requested: BackendName | 'auto';
  /** The tfjs backend actually running (`tf.getBackend()`): tfjs-node-gpu reports "tensorflow" even on GPU. */
  backend: string;
  /** Which package provides it. */
  provider: BackendName;
  /** Threads doing the matMul work: the BLAS's when the native kernel runs, else the backend's pool. */
  threads: number;
  /** The backend's own pool (wasm: XNNPACK threads; cpu: 1; tensorflow: intra-op default). */
  poolThreads: number;
  /** Why earlier candidates were skipped. */
  skipped: { backend: BackendName; reason: string }[];
  /** The BLAS matMul kernel registered for wasm/cpu (src/engine/native-matmul.ts), or why not. */
  nativeMatMul: NativeMatMulInfo;
  /** The fused norms, RoPE, masked softmax and attention transpose (src/engine/native-ops.ts), or why not. */
  nativeOps: NativeOpsInfo;
}

export interface EngineOptions {
  backend?: BackendName | 'auto';
  threads?: number;
  /** Default: HOPSCOPE_NATIVE_MATMUL, else 'auto'. */
  native?: NativeMode;
  /**
   * The BLAS libraries to try, as HOPSCOPE_BLAS_LIBRARY names them (which it overrides): ['builtin'] pins the
   * built-in GEMM, whose sums do not depend on which system library a machine has (training, src/train/cli.ts).
   */
  blasLibraries?: readonly string[];
}

let current: EngineInfo | null = null;

/**
 * The native kernel is registered only after its self-test passed in this process (native-matmul.ts); any
 * failure leaves the stock kernels with the reason in `nativeMatMul.reason`, which describeEngine prints.
 * XNNPACK's transpose-flag and batched matMuls (every attention product, every gradient) run at ~2 GFLOP/s
 * and its large products stay well below the machine; OpenBLAS does both at BLAS speed (docs/performance.md).
 * The stock kernels stay registered underneath: anything the native kernel does not handle goes to them.
 */
function startNative(mode: NativeMode, provider: BackendName, threads: number): NativeMatMulInfo {
  allowNativeOps(mode !== 'off');
  if (mode === 'off' || (provider !== 'wasm' && provider !== 'cpu')) {
    disableNativeMatMul();
    return { enabled: false, backends: [], reason: mode === 'off' ? 'turned off' : `not used with ${provider}` };
  }
  const info = enableNativeMatMul({ threads });
  if (!info.enabled && mode === 'on') throw new HopscopeError(`native matMul was required but is unavailable: ${info.reason}`);
  return info;
}

/** The fused kernels for a started backend (they serve wasm and cpu; startNative has said whether they may run). */
function opsFor(provider: BackendName): NativeOpsInfo {
  return provider === 'wasm' || provider === 'cpu' ? nativeOpsInfo() : { enabled: false, reason: `not used with ${provider}`, backends: [] };
}

async function tryBackend(name: BackendName, threads: number): Promise<number> {
  switch (name) {
    case 'tensorflow-gpu':
    case 'tensorflow': {
      // Optional dependencies: absent or without their native binding they throw here, and we move on.
      require(name === 'tensorflow-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node');
      if (!(await tf.setBackend('tensorflow'))) throw new Error('tf.setBackend("tensorflow") failed');
      return threads;
    }
    case 'wasm': {
      registerThreadedWasm(threads);
      if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") failed');
      const wasm = require('@tensorflow/tfjs-backend-wasm') as { getThreadsCount(): number };
      return wasm.getThreadsCount();
    }
    case 'cpu': {
      if (!(await tf.setBackend('cpu'))) throw new Error('tf.setBackend("cpu") failed');
      // tfjs prints a "install tfjs-node" banner on the cpu backend's first use; initEngine has tried it already.
      (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
      return 1;
    }
  }
}

/**
 * Starts the compute engine once per process and reports what runs.
 * Calling it again with the same request returns the running engine; a different forced backend switches.
 */
export async function initEngine(opts: EngineOptions = {}): Promise<EngineInfo> {
  // The one place the environment is read (src/engine/config.ts); options override it.
  const env = parseEngineConfig();
  const config = opts.blasLibraries ? Object.freeze({ ...env, blasLibraries: Object.freeze([...opts.blasLibraries]) }) : env;
  setEngineConfig(config);
  const requested = opts.backend !== undefined ? parseBackend(opts.backend, 'backend') : config.backend;
  const native = opts.native !== undefined ? parseNative(opts.native, 'native') : config.nativeMatMul;
  if (current && (requested === 'auto' || requested === current.provider)) {
    // Same backend: only an explicit native mode changes anything.
    if (opts.native !== undefined) current = { ...current, nativeMatMul: startNative(native, current.provider, current.threads), nativeOps: opsFor(current.provider) };
    return current;
  }
  const threads = opts.threads ?? config.threads;
  const candidates = requested === 'auto' ? BACKEND_ORDER : [requested];
  const skipped: EngineInfo['skipped'] = [];
  for (const name of candidates) {
    try {
      const nat = startNative(native, name, threads);
      // With BLAS doing the matMuls, XNNPACK keeps only the small products, where waking a second pool
      // thread per op costs more than it brings (the demo: 9 s on one pool thread, 71 s on two under load).
      const used = await tryBackend(name, name === 'wasm' && nat.enabled ? 1 : threads);
      const blas = nat.threads !== undefined && nat.threads > 0 ? nat.threads : threads;
      current = { requested, backend: tf.getBackend(), provider: name, threads: nat.enabled ? blas : used, poolThreads: used, skipped, nativeMatMul: nat, nativeOps: opsFor(name) };
      return current;
    } catch (e) {
      skipped.push({ backend: name, reason: (e as Error).message.split('\n')[0] });
    }
  }
  throw new HopscopeError(
    `no TensorFlow.js backend could start (${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')})`,
  );
}

/** The running engine, or null before initEngine. */
export function engineInfo(): EngineInfo | null {
  return current;
}

/** Releases the wasm worker threads so the process can exit. */
export function shutdownEngine(): void {
  if (current?.provider === 'wasm') tf.removeBackend('wasm');
  current = null;
}

export function describeEngine(e: EngineInfo): string {
  const s = e.skipped.length ? ` (skipped: ${e.skipped.map((x) => x.backend).join(', ')})` : '';
  // Enabled at start is not enabled now when a native call has failed since: say so (native-matmul.ts).
  const nat = e.nativeMatMul.enabled ? nativeMatMulInfo() : e.nativeMatMul;
  const n = nat.enabled
    ? `, matMul: ${isBuiltinGemm(nat.library) ? `native (${nat.library}` : `native BLAS (${path.basename(nat.library ?? '?')}`}, self-tested), ${e.provider} pool ${e.poolThreads} thread${e.poolThreads === 1 ? '' : 's'}`
    : `, matMul: stock (${nat.reason})`;
  const ops = e.nativeOps?.enabled && nativeOpsInfo().enabled ? ', fused ops: native' : '';
  return `backend ${e.provider} (tf.getBackend()=${e.backend}), ${e.threads} thread${e.threads === 1 ? '' : 's'}${n}${ops}${s}`;
}
