// Engine configuration: every HOPSCOPE_* variable the library reads, parsed and validated in one place, then
// frozen and passed down (issue 13: nine variables were read in eight files, HOPSCOPE_THREADS with three
// defaults and two ways of handling a bad value). `initEngine` parses it when it starts the engine; code that
// runs later reads the running engine's copy through `engineConfig()`, never the environment.
import * as os from 'node:os';
import { ConfigError } from '../errors';

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_ORDER: readonly BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

/** 'auto': the BLAS matMul kernel when it builds, else the stock kernels; 'on': fail if it cannot; 'off': stock. */
export type NativeMode = 'auto' | 'on' | 'off';

export const GEMM_ISAS = ['avx512', 'avx2'] as const;
export type GemmIsa = (typeof GEMM_ISAS)[number];

export interface EngineConfig {
  /** HOPSCOPE_BACKEND: auto (the first of BACKEND_ORDER that loads) or a forced backend. */
  backend: BackendName | 'auto';
  /** HOPSCOPE_NATIVE_MATMUL: auto | on (1) | off (0). */
  nativeMatMul: NativeMode;
  /** HOPSCOPE_NATIVE_DIR: where the native matMul addon is built (null: its default folder). */
  nativeDir: string | null;
  /** HOPSCOPE_BLAS_LIBRARY: the BLAS libraries to try, in order (paths or sonames joined by ':'; null: the built-in list). */
  blasLibraries: readonly string[] | null;
  /**
   * HOPSCOPE_GEMM_ISA: the built-in GEMM's micro-kernel, avx512 or avx2 (null: the widest the CPU has). Both give
   * the same bits (src/engine/native-matmul.cc); avx2 exists to compare them and to time the narrow one.
   */
  gemmIsa: GemmIsa | null;
  /**
   * HOPSCOPE_THREADS: compute threads (wasm pool and BLAS). Default min(CPU cores, 16) for every consumer; the
   * teaching-model trainer asks for 1 explicitly. A value that is not a positive integer is a ConfigError.
   */
  threads: number;
  /** Whether `threads` came from HOPSCOPE_THREADS (else the default). */
  threadsFromEnv: boolean;
  /** HOPSCOPE_MEMORY_BUDGET in bytes (null: the backend's default, src/models/streaming.ts). */
  memoryBudget: number | null;
  /** HOPSCOPE_BATCHED_ATTENTION_MAX: attention sizes (B·H·T·S·head_dim) up to which the batched path runs. */
  batchedAttentionMax: number;
  /** HOPSCOPE_WIDGETS_STATIC: the static widget bundle static pages inline (null: widgets/dist/static.js). */
  widgetsStatic: string | null;
}

/** The variables this module reads, for docs and errors. */
export const ENGINE_VARIABLES = [
  'HOPSCOPE_BACKEND',
  'HOPSCOPE_NATIVE_MATMUL',
  'HOPSCOPE_NATIVE_DIR',
  'HOPSCOPE_BLAS_LIBRARY',
  'HOPSCOPE_GEMM_ISA',
  'HOPSCOPE_THREADS',
  'HOPSCOPE_MEMORY_BUDGET',
  'HOPSCOPE_BATCHED_ATTENTION_MAX',
  'HOPSCOPE_WIDGETS_STATIC',
] as const;

export const DEFAULT_BATCHED_ATTENTION_MAX = 1 << 22;

const blank = (v: string | undefined): v is undefined => v == null || v.trim() === '';

export function parseBackend(v: string | undefined, source: string): BackendName | 'auto' {
  if (blank(v) || v === 'auto') return 'auto';
  if ((BACKEND_ORDER as readonly string[]).includes(v)) return v as BackendName;
  throw new ConfigError(`${source}=${v} is not a backend; use one of auto, ${BACKEND_ORDER.join(', ')}`);
}

export function parseGemmIsa(v: string | undefined, source: string): GemmIsa | null {
  if (blank(v) || v === 'auto') return null;
  if ((GEMM_ISAS as readonly string[]).includes(v)) return v as GemmIsa;
  throw new ConfigError(`${source}=${v} is not a built-in GEMM kernel; use auto, ${GEMM_ISAS.join(' or ')}`);
}

export function parseNative(v: string | undefined, source: string): NativeMode {
  if (blank(v) || v === 'auto') return 'auto';
  if (v === 'on' || v === '1') return 'on';
  if (v === 'off' || v === '0') return 'off';
  throw new ConfigError(`${source}=${v} is not a native matMul mode; use auto, on or off`);
}

export function defaultThreads(): number {
  return Math.max(1, Math.min(os.cpus().length, 16));
}

function positiveInt(v: string, source: string, what: string): number {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isInteger(n) || n < 1) throw new ConfigError(`${source}=${v} must be a positive integer (${what})`);
  return n;
}

/** A whole number ≥ 0: for HOPSCOPE_BATCHED_ATTENTION_MAX, 0 means "never batch attention" (the per-row path, which the attention-path tests force). */
function nonNegativeInt(v: string, source: string, what: string): number {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isInteger(n)) throw new ConfigError(`${source}=${v} must be a whole number ≥ 0 (${what}; 0 = never batched)`);
  return n;
}

const UNITS: Record<string, number> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40, k: 1e3, m: 1e6, g: 1e9,
};

/** "3.5GB", "512MiB", "100kB" or a byte count → bytes; `where` names the setting in the error. */
export function parseBytes(v: string | number, where = 'memory budget'): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v <= 0) throw new ConfigError(`${where}: ${v} must be a positive number of bytes`);
    return v;
  }
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*([a-z]*)\s*$/i.exec(v);
  const unit = m ? UNITS[(m[2] || 'b').toLowerCase()] : undefined;
  if (!m || unit === undefined || !(Number(m[1]) > 0))
    throw new ConfigError(`${where}: "${v}" is not a size; write bytes or a number with a unit (e.g. 100kB, 512MiB, 3.5GB)`);
  return Number(m[1]) * unit;
}

/** Parses and validates the variables (a bad one is a ConfigError naming it, its value and what is allowed); frozen. */
export function parseEngineConfig(env: NodeJS.ProcessEnv = process.env): Readonly<EngineConfig> {
  const threadsEnv = env.HOPSCOPE_THREADS;
  const attn = env.HOPSCOPE_BATCHED_ATTENTION_MAX;
  const budget = env.HOPSCOPE_MEMORY_BUDGET;
  return Object.freeze({
    backend: parseBackend(env.HOPSCOPE_BACKEND, 'HOPSCOPE_BACKEND'),
    nativeMatMul: parseNative(env.HOPSCOPE_NATIVE_MATMUL, 'HOPSCOPE_NATIVE_MATMUL'),
    nativeDir: blank(env.HOPSCOPE_NATIVE_DIR) ? null : env.HOPSCOPE_NATIVE_DIR,
    blasLibraries: blank(env.HOPSCOPE_BLAS_LIBRARY) ? null : Object.freeze(env.HOPSCOPE_BLAS_LIBRARY.split(':').filter((x) => x !== '')),
    gemmIsa: parseGemmIsa(env.HOPSCOPE_GEMM_ISA, 'HOPSCOPE_GEMM_ISA'),
    threads: blank(threadsEnv) ? defaultThreads() : positiveInt(threadsEnv, 'HOPSCOPE_THREADS', 'compute threads'),
    threadsFromEnv: !blank(threadsEnv),
    memoryBudget: blank(budget) ? null : parseBytes(budget, 'HOPSCOPE_MEMORY_BUDGET'),
    batchedAttentionMax: blank(attn) ? DEFAULT_BATCHED_ATTENTION_MAX : nonNegativeInt(attn, 'HOPSCOPE_BATCHED_ATTENTION_MAX', 'an attention size B·H·T·S·head_dim'),
    widgetsStatic: blank(env.HOPSCOPE_WIDGETS_STATIC) ? null : env.HOPSCOPE_WIDGETS_STATIC,
  });
}

let active: Readonly<EngineConfig> | null = null;

/** Called by initEngine with the configuration it started the engine with. */
export function setEngineConfig(config: Readonly<EngineConfig>): void {
  active = config;
}

/** The running engine's configuration; before initEngine, the environment's (parsed once, then kept). */
export function engineConfig(): Readonly<EngineConfig> {
  if (!active) active = parseEngineConfig();
  return active;
}
