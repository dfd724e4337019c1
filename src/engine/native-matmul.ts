// Optional native matMul: tfjs's `BatchMatMul` / `_FusedMatMul` kernels re-registered for the wasm (and cpu)
// backend to call the system BLAS (OpenBLAS sgemm) in place on the backend's own memory. XNNPACK in wasm32
// reaches 20–55 GFLOP/s on 2 cores and its transpose-flag / batched path ~2; OpenBLAS 250–330 (engine.md,
// docs/performance.md). Fail-soft: the addon is compiled once at install (`npm run build:native`, which npm
// install's postinstall runs: scripts/build-native.ts) with g++ straight (no node-gyp, no BLAS headers: the
// library is dlopen'ed), cached by source hash and Node ABI; a run never compiles (issue 20), it finds the
// build or says in the engine line how to make it. It is trusted only after a
// self-test in this process (the library loads and a few small products match a plain reference); if
// anything is missing or wrong `enableNativeMatMul` reports why and the stock kernels stay registered, and a
// native call that throws later hands that call, and every later one, to the stock kernels (issue 17: a
// library that appeared and vanished under a running suite made a forward die after "native BLAS" was
// announced).
import * as childProcess from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { engineConfig } from './config';

/** What the compiled addon exports (native-matmul.cc). Exported for the test hook below. */
export interface NativeAddon {
  load(paths: string[]): string;
  /** Makes the addon's own GEMM (x86-64 with AVX2 and FMA) the sgemm in use and returns its name; throws where it cannot run. */
  useBuiltin?(isa?: string): string;
  setThreads(n: number): number;
  sgemm(
    a: Float32Array, b: Float32Array, c: Float32Array,
    batch: number, M: number, N: number, K: number,
    transA: number, transB: number, strideA: number, strideB: number,
  ): void;
  /** madvise(MADV_HUGEPAGE) over the 2 MB-aligned part of a view's memory: bytes advised, or -errno. */
  adviseHuge?(view: ArrayBufferView): number;
  /** dst[c * rows + r0 + r] = src[r * cols + c] for a band of nr rows, over `threads` threads (needs no BLAS). */
  transpose32?(src: Uint32Array, nr: number, cols: number, dst: Uint32Array, rows: number, r0: number, threads: number): void;
  // The fused non-GEMM kernels (native-ops.ts; need no BLAS). Each writes `out` and reads its inputs in place.
  /** LayerNorm (centred 1, b optional) or RMSNorm (centred 0, b null) over rows of d. */
  norm?(x: Float32Array, w: Float32Array, b: Float32Array | null, out: Float32Array, rows: number, d: number, eps: number, centred: number, threads: number): void;
  rope?(x: Float32Array, cos: Float32Array, sin: Float32Array, out: Float32Array, B: number, H: number, T: number, hd: number, tablesPerBatch: number, scale: number, threads: number): void;
  softmax?(x: Float32Array, mask: Float32Array | null, out: Float32Array, d0: number, d1: number, d2: number, S: number, m0: number, m1: number, m2: number, threads: number): void;
  transpose0213?(x: Float32Array, out: Float32Array, A: number, B: number, C: number, D: number, threads: number): void;
}

export interface NativeMatMulInfo {
  enabled: boolean;
  /** The BLAS library that provides sgemm (when enabled). */
  library?: string;
  /** BLAS threads (OpenBLAS), -1 when the library cannot say. */
  threads?: number;
  /** Backends whose kernels were replaced. */
  backends: string[];
  /** Why it is not enabled (when it is not). */
  reason?: string;
  /** The compiled addon. */
  addon?: string;
  /** Largest |native - reference| of the self-test products (when it ran). */
  selfTestDiff?: number;
}

export interface NativeMatMulOptions {
  /** Backends to patch (default: wasm and cpu). */
  backends?: string[];
  /** BLAS threads (default HOPSCOPE_THREADS or the CPU count). */
  threads?: number;
  /** Smaller products (M*N*K) stay on the stock kernel, whose call overhead is lower (default 32768). */
  minWork?: number;
  /** Where compiled addons are cached (default HOPSCOPE_NATIVE_DIR or node_modules/.cache/hopscope-native). */
  cacheDir?: string;
}

const SOURCE = path.join(__dirname, 'native-matmul.cc');
/** Tried in order unless HOPSCOPE_BLAS_LIBRARY names the library (a path or soname; several joined by ':'). */
const BLAS_CANDIDATES = [
  'libopenblas.so.0',
  '/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0',
  '/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0',
  'libopenblas.so',
  'libblas.so.3',
];
const KERNELS = [tf.BatchMatMul, tf._FusedMatMul] as const;

/** The addon in use (the compiled one, or the test hook's) and the compiled one, dlopen'ed at most once. */
let addon: NativeAddon | null = null;
let compiled: { addon: NativeAddon; file: string } | null = null;
/** The BLAS the addon loaded and that passed the self-test; null until both happened in this process. */
let trusted: { library: string; diff: number } | null = null;
/** Set once a native call has thrown: the wrappers hand every call to the stock kernels from then on. */
let failedAtRunTime = false;
let state: NativeMatMulInfo = { enabled: false, backends: [], reason: 'not requested' };
const originals = new Map<string, tf.KernelConfig>();
let minWork = 32768;

function nodeIncludeDir(): string | null {
  const candidates = [
    path.join(path.dirname(process.execPath), '..', 'include', 'node'),
    path.join(os.homedir(), '.cache', 'node-gyp', process.versions.node, 'include', 'node'),
    '/usr/include/node',
  ];
  return candidates.find((d) => fs.existsSync(path.join(d, 'node_api.h'))) ?? null;
}

function defaultCacheDir(): string {
  const dir = engineConfig().nativeDir;
  if (dir) return dir;
  const nm = path.resolve(__dirname, '..', '..', 'node_modules');
  return fs.existsSync(nm) ? path.join(nm, '.cache', 'hopscope-native') : path.join(os.tmpdir(), 'hopscope-native');
}

/**
 * The compiler flags (part of the build's cache key). -ffp-contract=off: the fused kernels (native-ops.ts) compute
 * the composites' float32 expressions in their order, and a contracted multiply-add (aarch64's default) would round
 * differently. -O3 -fno-trapping-math: lets the compiler vectorize loops with selects (the exp's range checks; it
 * changes no result, only which floating-point exception flags could be raised). No -march: one build may serve
 * several machines of a cluster.
 */
const CXX_FLAGS = ['-O3', '-ffp-contract=off', '-fno-trapping-math', '-shared', '-fPIC', '-pthread', '-std=c++17'];

/** Where the addon of this source, Node ABI and architecture is (or would be) built. */
export function nativeAddonPath(cacheDir = defaultCacheDir()): string {
  const key = crypto.createHash('sha256').update(fs.readFileSync(SOURCE)).update(CXX_FLAGS.join(' ')).update(process.versions.modules).update(process.arch).digest('hex').slice(0, 16);
  return path.join(cacheDir, `native-matmul-${key}.node`);
}

/** Compiles the addon once per source/ABI (a second or two) and returns its path (`npm run build:native`). */
export function buildNativeMatMul(cacheDir = defaultCacheDir()): string {
  const out = nativeAddonPath(cacheDir);
  if (fs.existsSync(out)) return out;
  const inc = nodeIncludeDir();
  if (!inc) throw new Error('Node headers (node_api.h) not found: install nodejs headers or run `npx node-gyp install`');
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const cxx = process.env.CXX ?? 'g++';
  const args = [...CXX_FLAGS, `-I${inc}`, '-DNODE_GYP_MODULE_NAME=hopscope_native_matmul', SOURCE, '-o', tmp, '-ldl'];
  const r = childProcess.spawnSync(cxx, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`${cxx} failed: ${(r.error?.message ?? r.stderr ?? '').split('\n').slice(0, 3).join(' ')}`);
  }
  fs.renameSync(tmp, out); // atomic: concurrent builders never load a half-written file
  return out;
}

/** What the native kernels read of a tfjs backend (wasm: the heap; cpu: its arrays). */
export interface HeapBackend {
  dataIdMap?: { get(id: unknown): { memoryOffset?: number } | undefined };
  data?: { get(id: unknown): { values?: unknown } | undefined };
  typedArrayFromHeap?(t: tf.TensorInfo): Float32Array;
  makeOutput?(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  makeTensorInfo?(shape: number[], dtype: tf.DataType, values?: Float32Array): tf.TensorInfo;
  disposeData?(dataId: unknown, force?: boolean): boolean;
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function operand(backendName: string, backend: HeapBackend, t: tf.TensorInfo): Float32Array | null {
  if (backendName === 'wasm') {
    if (!backend.typedArrayFromHeap || backend.dataIdMap?.get(t.dataId)?.memoryOffset == null) return null;
    return backend.typedArrayFromHeap(t);
  }
  const v = backend.data?.get(t.dataId)?.values;
  return v instanceof Float32Array && v.length === size(t.shape) ? v : null;
}

/**
 * The shared body of both kernels: returns the product, or null to hand the call to the stock kernel
 * (non-float32, general broadcasting, small products, bias shapes or activations we do not handle).
 */
function nativeMatMul(
  backendName: string,
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
  fused: boolean,
): tf.TensorInfo | null {
  const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
  const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean; activation?: string };
  if (!a || !b || a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  if (fused && ((attrs.activation && attrs.activation !== 'linear' && attrs.activation !== 'relu') || preluActivationWeights)) return null;
  const tA = !!attrs.transposeA;
  const tB = !!attrs.transposeB;
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return null;
  const M = tA ? a.shape[ra - 1] : a.shape[ra - 2];
  const K = tA ? a.shape[ra - 2] : a.shape[ra - 1];
  const K2 = tB ? b.shape[rb - 1] : b.shape[rb - 2];
  const N = tB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (K !== K2) return null; // the stock kernel raises the proper error
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = size(outerA);
  const batchB = size(outerB);
  let outer: number[];
  if (batchA === batchB && outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i])) outer = outerA;
  else if (batchB === 1) outer = outerA.length >= outerB.length ? outerA : [...outerB.slice(0, outerB.length - outerA.length), ...outerA];
  else if (batchA === 1) outer = outerB.length >= outerA.length ? outerB : [...outerA.slice(0, outerA.length - outerB.length), ...outerB];
  else return null;
  const batch = Math.max(batchA, batchB);
  // Rank-2 no-transpose products go to XNNPACK below the threshold; every other product is the stock
  // kernel's slow path (about 2 GFLOP/s), so native wins at any size there.
  const slowStock = tA || tB || batch > 1;
  if (!slowStock && M * N * K < minWork) return null;
  if (M * N === 0 || batch === 0) return null;
  const backend = args.backend as HeapBackend;
  let biasData: Float32Array | null = null;
  if (fused && bias) {
    if (bias.dtype !== 'float32') return null;
    const bs = size(bias.shape);
    if (bs !== N && bs !== 1) return null;
    biasData = operand(backendName, backend, bias);
    if (!biasData) return null;
  }
  const outShape = [...outer, M, N];
  const da = operand(backendName, backend, a);
  const db = operand(backendName, backend, b);
  if (!da || !db) return null;
  let out: tf.TensorInfo;
  let dc: Float32Array;
  if (backendName === 'wasm') {
    out = backend.makeOutput!(outShape, 'float32');
    // makeOutput may grow the heap (detaching earlier views): take every view again afterwards.
    dc = backend.typedArrayFromHeap!(out);
    const a2 = backend.typedArrayFromHeap!(a);
    const b2 = backend.typedArrayFromHeap!(b);
    try {
      addon!.sgemm(a2, b2, dc, batch, M, N, K, tA ? 1 : 0, tB ? 1 : 0, batchA === 1 ? 0 : M * K, batchB === 1 ? 0 : K * N);
    } catch (e) {
      backend.disposeData?.(out.dataId); // the caller falls back to the stock kernel: free the unused output
      throw e;
    }
    if (biasData) biasData = backend.typedArrayFromHeap!(bias!);
  } else {
    dc = new Float32Array(batch * M * N);
    addon!.sgemm(da, db, dc, batch, M, N, K, tA ? 1 : 0, tB ? 1 : 0, batchA === 1 ? 0 : M * K, batchB === 1 ? 0 : K * N);
    out = backend.makeTensorInfo!(outShape, 'float32', dc);
  }
  if (biasData) {
    if (biasData.length === 1) {
      const v = biasData[0];
      for (let i = 0; i < dc.length; i++) dc[i] += v;
    } else for (let i = 0; i < dc.length; i += N) for (let j = 0; j < N; j++) dc[i + j] += biasData[j];
  }
  if (fused && attrs.activation === 'relu') for (let i = 0; i < dc.length; i++) if (dc[i] < 0) dc[i] = 0;
  return out;
}

/** Test hook: `addon` replaces the compiled addon (so the fallbacks are testable without g++ or BLAS). */
export interface NativeMatMulTestHooks {
  addon?: NativeAddon;
}
let hooks: NativeMatMulTestHooks = {};

/** For tests only: installs (or, with `{}`, removes) the hooks and forgets what was loaded and tested. */
export function setNativeMatMulTestHooks(h: NativeMatMulTestHooks): void {
  disableNativeMatMul();
  hooks = h;
  addon = null;
  trusted = null;
  transposeKernel = null;
  failedAtRunTime = false;
  state = { enabled: false, backends: [], reason: 'not requested' };
}

function blasCandidates(): string[] {
  return [...(engineConfig().blasLibraries ?? BLAS_CANDIDATES)];
}

/** Names the built-in GEMM in HOPSCOPE_BLAS_LIBRARY (to use it though a system BLAS exists: benchmarks, tests). */
export const BUILTIN_GEMM = 'builtin';

/** Whether the library the native matMul reports is the addon's built-in GEMM (its name, native-matmul.cc UseBuiltin). */
export function isBuiltinGemm(library: string | null | undefined): boolean {
  return /^built-in GEMM/.test(library ?? '');
}

/** Whether the library the native matMul reports is the built-in GEMM's AVX-512 kernel. */
export function isWideBuiltinGemm(library: string | null | undefined): boolean {
  return isBuiltinGemm(library) && /AVX-512/.test(library ?? '');
}

/**
 * Loads what sgemm runs on. On a CPU with AVX-512, the addon's built-in GEMM with its wide kernel: 1.6-1.8x
 * Debian's OpenBLAS 0.3.21 at the models' shapes on issue 20's EPYC (docs/performance.md, session 18); a system
 * BLAS runs there only when HOPSCOPE_BLAS_LIBRARY names it. Elsewhere the first system BLAS that loads, else (unless
 * HOPSCOPE_BLAS_LIBRARY names one) the built-in GEMM's AVX2 kernel (x86-64 with AVX2 and FMA; session 16: 2x
 * XNNPACK's large products in wasm, 20x its batched attention products, and no packed copy of every weight).
 * Throws why neither (every dlopen error, then why not the built-in one).
 */
function loadBlas(ad: NativeAddon): string {
  const candidates = blasCandidates();
  const isa = engineConfig().gemmIsa ?? undefined;
  if (candidates.length === 1 && candidates[0] === BUILTIN_GEMM) {
    if (!ad.useBuiltin) throw new Error('this addon has no built-in GEMM');
    return ad.useBuiltin(isa);
  }
  if (ad.useBuiltin && !engineConfig().blasLibraries && isa !== 'avx2') {
    let wide: string | null = null;
    try {
      wide = ad.useBuiltin(isa);
    } catch {
      // No AVX2 either: the system BLAS below, or the reason.
    }
    if (isWideBuiltinGemm(wide)) return wide!;
  }
  try {
    return ad.load(candidates);
  } catch (e) {
    // A library named in HOPSCOPE_BLAS_LIBRARY is what the user asked for: missing, it is reported, not replaced.
    if (!ad.useBuiltin || engineConfig().blasLibraries) throw e;
    try {
      return ad.useBuiltin(isa);
    } catch (e2) {
      throw new Error(`${shortReason((e as Error).message.split('\n')[0])}; ${(e2 as Error).message.split('\n')[0]}`);
    }
  }
}

/** Max |native - reference| tolerated by the self-test: float32 sums of <= 33 products of values in [-1, 1). */
const SELF_TEST_TOLERANCE = 1e-4;

/**
 * A few small products through the addon, each against a float64 triple loop (what the stock kernels
 * compute, to float32 rounding): every transpose combination, a strided batch and a broadcast operand.
 * Returns the largest difference; throws (with what was wrong) when it is over the tolerance or not finite.
 */
function selfTest(ad: NativeAddon): number {
  let seed = 12345;
  const rand = (n: number) =>
    Float32Array.from({ length: n }, () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 1073741824 - 1;
    });
  let worst = 0;
  for (const [batch, M, N, K, tA, tB, broadcastB] of [
    [1, 5, 3, 7, 0, 0, 0], [1, 4, 6, 33, 1, 0, 0], [1, 6, 2, 5, 0, 1, 0], [1, 3, 3, 9, 1, 1, 0], [3, 4, 5, 6, 0, 1, 1], [2, 7, 4, 3, 1, 0, 0],
  ] as const) {
    const sA = M * K;
    const sB = broadcastB ? 0 : K * N;
    const a = rand(batch * sA);
    const b = rand(broadcastB ? K * N : batch * sB);
    const c = new Float32Array(batch * M * N).fill(Number.NaN); // every entry must be written
    ad.sgemm(a, b, c, batch, M, N, K, tA, tB, sA, sB);
    for (let p = 0; p < batch; p++)
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++) {
          let ref = 0;
          for (let k = 0; k < K; k++) ref += a[p * sA + (tA ? k * M + i : i * K + k)] * b[p * sB + (tB ? j * K + k : k * N + j)];
          const d = Math.abs(c[(p * M + i) * N + j] - ref);
          if (!(d <= SELF_TEST_TOLERANCE))
            throw new Error(`self-test product ${batch}x${M}x${N}x${K} (tA=${tA}, tB=${tB}) differs from the reference by ${d} at [${p},${i},${j}] (tolerance ${SELF_TEST_TOLERANCE})`);
          worst = Math.max(worst, d);
        }
  }
  return worst;
}

/** The addon built at install, dlopen'ed once per process; throws, saying how to build it, when it is not built. */
function builtAddon(cacheDir: string | undefined): { addon: NativeAddon; file: string } {
  if (!compiled) {
    // Built at install, never here: a first forward must not wait for (or fail in) a compiler.
    const f = nativeAddonPath(cacheDir);
    if (!fs.existsSync(f))
      throw new Error(`the native addon is not built for this source and Node ${process.version} (\`npm run build:native\` builds it; it needs g++ and Node's headers)`);
    const mod = { exports: {} as NativeAddon };
    process.dlopen(mod, f);
    compiled = { addon: mod.exports, file: f };
  }
  return compiled;
}

/**
 * The built addon for the kernels that need no BLAS (the loading transpose, the fused ops of native-ops.ts), or
 * throws why not: turned off (HOPSCOPE_NATIVE_MATMUL=off, which turns every native kernel off), or not built.
 */
export function blasFreeAddon(): NativeAddon {
  if (engineConfig().nativeMatMul === 'off') throw new Error('turned off');
  return hooks.addon ?? builtAddon(undefined).addon;
}

export type Transpose32 = (src: Uint32Array, nr: number, cols: number, dst: Uint32Array, rows: number, r0: number) => void;
let transposeKernel: { fn: Transpose32 | null; reason: string | null } | null = null;

/**
 * The addon's multi-threaded 32-bit transpose (src/io/dtype.ts uses it to load HF `[out, in]` weights), or null
 * when the addon is not built, the native path is turned off (HOPSCOPE_NATIVE_MATMUL=off) or its self-test
 * failed. It needs no BLAS. Decided once per process; `nativeTransposeInfo` says which.
 */
export function nativeTranspose32(): Transpose32 | null {
  if (transposeKernel) return transposeKernel.fn;
  transposeKernel = { fn: null, reason: null };
  try {
    const ad = blasFreeAddon();
    const t32 = ad.transpose32?.bind(ad);
    if (!t32) throw new Error('the addon has no transpose32');
    // Self-test: a band in the middle of a matrix whose sides are not multiples of the tile, against the definition.
    const [rows, cols, r0, nr] = [70, 45, 19, 37];
    const src = Uint32Array.from({ length: nr * cols }, (_, i) => (i * 2654435761) >>> 0);
    const dst = new Uint32Array(rows * cols);
    t32(src, nr, cols, dst, rows, r0, 2);
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        const want = r >= r0 && r < r0 + nr ? src[(r - r0) * cols + c] : 0;
        if (dst[c * rows + r] !== want) throw new Error(`transpose32 self-test: [${r}, ${c}] is ${dst[c * rows + r]}, not ${want}`);
      }
    const threads = engineConfig().threads;
    transposeKernel.fn = (s, n, c, d, rws, start) => t32(s, n, c, d, rws, start, threads);
  } catch (e) {
    transposeKernel.reason = (e as Error).message.split('\n')[0];
  }
  return transposeKernel.fn;
}

/**
 * Asks for transparent huge pages under a large destination about to be written once (a weight in the wasm heap),
 * when the addon is built and the native path is not turned off; a no-op otherwise. Returns the bytes advised.
 */
export function adviseHugePages(view: ArrayBufferView): number {
  if (view.byteLength < 4 << 20 || !nativeTranspose32()) return 0;
  const ad = hooks.addon ?? compiled?.addon;
  const n = ad?.adviseHuge ? ad.adviseHuge(view) : 0;
  return n > 0 ? n : 0;
}

/** Whether checkpoint loading transposes natively, and why not. */
export function nativeTransposeInfo(): { enabled: boolean; reason: string | null } {
  nativeTranspose32();
  return { enabled: transposeKernel!.fn !== null, reason: transposeKernel!.reason };
}

/** Loads the built addon, loads BLAS and self-tests it; once per process when it passes. */
function trust(threads: number | undefined, cacheDir: string | undefined): { file: string; library: string; threads: number; diff: number } {
  let file = '(test hook)';
  if (hooks.addon) addon = hooks.addon;
  else {
    const built = builtAddon(cacheDir);
    addon = built.addon;
    file = built.file;
  }
  if (!trusted) {
    // A failed load leaves the addon without sgemm: it is tried again on the next call, never assumed.
    const library = loadBlas(addon);
    let diff: number;
    try {
      diff = selfTest(addon);
    } catch (e) {
      throw new Error(`${path.basename(library)} failed the self-test: ${(e as Error).message.split('\n')[0]}`);
    }
    trusted = { library, diff };
  }
  const want = threads ?? engineConfig().threads;
  return { file, library: trusted.library, threads: addon.setThreads(want), diff: trusted.diff };
}

/**
 * Which BLAS the built addon would use, or why none (the one-line reason the engine line prints), without
 * registering anything: what `npm run build:native` reports. It loads the addon as a run does (builtAddon), so a
 * later enableNativeMatMul in this process uses the same module and the library it found.
 */
export function probeBlas(): { library: string | null; reason?: string } {
  try {
    return { library: loadBlas(builtAddon(undefined).addon) };
  } catch (e) {
    return { library: null, reason: shortReason((e as Error).message.split('\n')[0]) };
  }
}

/** Records why the native path stopped and leaves it off for the rest of the process. */
function failAtRunTime(e: unknown): void {
  failedAtRunTime = true;
  const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
  state = { ...state, enabled: false, reason: `native sgemm failed at run time (${msg}); stock kernels from then on` };
}

/**
 * The engine line's reason when no BLAS loads: the addon lists every dlopen error (one per candidate path, all
 * "cannot open shared object file"), a wall of text in every notebook's first cell. The names tried and what to
 * install say the same in one line.
 */
function shortReason(msg: string): string {
  const m = /^no BLAS library with cblas_sgemm: (.*)$/.exec(msg);
  if (!m) return msg;
  const entries = m[1].split('; ').filter((x) => x !== '');
  // Anything but "not there" (a wrong architecture, a library without cblas_sgemm) keeps its full text.
  if (!entries.every((x) => x.includes('cannot open shared object file'))) return msg;
  const tried = entries.map((x) => path.basename(x.slice(0, x.indexOf(':'))));
  return `no BLAS library with cblas_sgemm (tried ${[...new Set(tried)].join(', ')}; apt-get install libopenblas0-pthread)`;
}

/**
 * Loads the built addon and BLAS, self-tests it and re-registers the matMul kernels of `backends`. Never
 * throws for a missing build or library or a wrong result: returns `{enabled: false, reason}` and
 * leaves tfjs as it was. Call before or after initEngine; switching backends later keeps the kernels patched.
 */
export function enableNativeMatMul(opts: NativeMatMulOptions = {}): NativeMatMulInfo {
  if (opts.minWork != null) minWork = opts.minWork;
  const backends = opts.backends ?? ['wasm', 'cpu'];
  if (failedAtRunTime) return state; // permanent: a library that threw once is not trusted again
  if (state.enabled && backends.every((b) => state.backends.includes(b))) return state;
  let t: ReturnType<typeof trust>;
  try {
    t = trust(opts.threads, opts.cacheDir);
  } catch (e) {
    state = { enabled: false, backends: [], reason: shortReason((e as Error).message.split('\n')[0]) };
    return state;
  }
  for (const pkg of ['@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-wasm'])
    try {
      require(pkg); // registers that backend's stock kernels, which we wrap
    } catch {
      /* not installed: nothing to patch there */
    }
  const patched = new Set(state.backends);
  for (const backendName of backends) {
    for (const kernelName of KERNELS) {
      const key = `${backendName}/${kernelName}`;
      const orig = originals.get(key) ?? tf.getKernel(kernelName, backendName);
      if (!orig) continue; // that backend's package is not loaded
      originals.set(key, orig);
      const fused = kernelName === tf._FusedMatMul;
      tf.unregisterKernel(kernelName, backendName);
      tf.registerKernel({
        ...orig,
        kernelFunc: (args) => {
          if (!failedAtRunTime)
            try {
              const out = nativeMatMul(backendName, args as never, fused);
              if (out) return out;
            } catch (e) {
              failAtRunTime(e); // this call and all later ones: the stock kernel
            }
          return orig.kernelFunc(args) as tf.TensorInfo;
        },
      });
      patched.add(backendName);
    }
  }
  state = {
    enabled: patched.size > 0, library: t.library, threads: t.threads, backends: [...patched], addon: t.file, selfTestDiff: t.diff,
    reason: patched.size ? undefined : 'no backend to patch',
  };
  return state;
}

/** Puts the stock kernels back. */
export function disableNativeMatMul(): void {
  for (const [key, orig] of originals) {
    const [backendName, kernelName] = key.split('/');
    tf.unregisterKernel(kernelName, backendName);
    tf.registerKernel(orig);
  }
  originals.clear();
  if (!failedAtRunTime) state = { enabled: false, backends: [], reason: 'disabled' }; // keep the run-time reason
}

export function nativeMatMulInfo(): NativeMatMulInfo {
  return state;
}
