// Fused native kernels for the non-GEMM ops of a transformer layer (issue 20, deliverable 2): RMSNorm, LayerNorm,
// RoPE (with the query's 1/sqrt(d) folded in), softmax with its additive mask, and the attention's [0, 2, 1, 3]
// transpose. Each composite is 2-7 stock kernels, each a pass over the tensor on one wasm thread and a JS
// dispatch; here it is one pass, in place on the backend's own memory (the wasm heap, or the cpu backend's
// arrays), split over the machine's cores. At the mid shapes (docs/performance.md, session 16): masked softmax
// 3.8x faster than the stock add + softmax, RoPE 5x, the transpose 30x, LayerNorm 1.4x, RMSNorm 1.2x. The
// activations stay stock (XNNPACK's SIMD sigmoid beat a portable fused SiLU·u 2.4x: native-matmul.cc).
//
// They are tfjs kernels of their own (`Hopscope*`, registered for wasm and cpu; the transpose replaces the stock
// `Transpose` for that permutation only), so tf.profile, memory accounting and tidy see them as any kernel.
// layers.ts asks for them through the functions below, which return null, and the caller computes the stock
// composite, whenever the fused kernel cannot serve the call:
//   - the addon is not built, the native path is turned off (HOPSCOPE_NATIVE_MATMUL=off) or its self-test failed;
//   - a gradient tape is recording (attribution, training): the composite's kernels have registered gradients, so
//     a backward pass and training runs (bit-for-bit reproducible weights, issue 15) never see a fused kernel;
//   - the backend is not wasm or cpu, an input is not float32, or the shapes are not the ones the kernel takes.
// They need no BLAS. A native call that throws turns them off for the rest of the process (the call itself is
// recomputed by the composite), as a failing native matMul does.
import * as tf from '@tensorflow/tfjs-core';
import { engineConfig } from './config';
import { blasFreeAddon, type HeapBackend, type NativeAddon } from './native-matmul';

export interface NativeOpsInfo {
  enabled: boolean;
  /** Why not (when not enabled). */
  reason?: string;
  /** Backends whose kernels were registered. */
  backends: string[];
}

const K = {
  rmsNorm: 'HopscopeRmsNorm',
  layerNorm: 'HopscopeLayerNorm',
  rope: 'HopscopeRope',
  softmax: 'HopscopeMaskedSoftmax',
} as const;
const BACKENDS = ['wasm', 'cpu'];
/** Below this many elements the stock Transpose (no thread start, no N-API call) is as fast. */
const TRANSPOSE_MIN = 1 << 14;

let state: NativeOpsInfo | null = null;
/** initEngine's native mode: 'off' (option or HOPSCOPE_NATIVE_MATMUL) turns the fused kernels off too. */
let allowed = true;
let addon: NativeAddon | null = null;
/** Backends whose stock Transpose is wrapped (once per process). */
const wrappedTranspose = new Set<string>();

/**
 * One kernel's body for both backends: allocates the output, takes every input's memory (after the allocation,
 * which may grow and so move the wasm heap) and lets `compute` write the output in place.
 */
function kernelFunc(
  backendName: string,
  names: string[],
  outShape: (ins: Record<string, tf.TensorInfo>) => number[],
  compute: (ad: NativeAddon, data: Record<string, Float32Array | null>, out: Float32Array, ins: Record<string, tf.TensorInfo>, attrs: tf.NamedAttrMap) => void,
): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const ins = inputs as Record<string, tf.TensorInfo>;
    const be = backend as HeapBackend;
    const shape = outShape(ins);
    const view = (t: tf.TensorInfo | undefined): Float32Array | null => {
      if (!t) return null;
      if (backendName === 'wasm') return be.typedArrayFromHeap!(t);
      const v = be.data!.get(t.dataId)!.values;
      if (!(v instanceof Float32Array)) throw new Error('native ops: an input is not float32');
      return v;
    };
    if (backendName === 'wasm') {
      const out = be.makeOutput!(shape, 'float32');
      try {
        compute(addon!, Object.fromEntries(names.map((n) => [n, view(ins[n])])), be.typedArrayFromHeap!(out), ins, attrs ?? {});
      } catch (e) {
        be.disposeData?.(out.dataId, true);
        throw e;
      }
      return out;
    }
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    compute(addon!, Object.fromEntries(names.map((n) => [n, view(ins[n])])), values, ins, attrs ?? {});
    return be.makeTensorInfo!(shape, 'float32', values);
  };
}

const threads = (): number => engineConfig().threads;
const lastDim = (t: tf.TensorInfo): number => t.shape[t.shape.length - 1];
const rowsOf = (t: tf.TensorInfo): number => t.shape.slice(0, -1).reduce((a, b) => a * b, 1);

/**
 * The softmax kernel's view of scores [..., S] as [d0, d1, d2, S] (leading axes padded with 1, or folded into d0
 * above rank 4) and the mask's strides on those three axes (0 broadcasts). nativeMaskedSoftmax admits a mask of
 * rank > 4 only when it is full, and otherwise only leading axes equal to the scores' or 1.
 */
export function softmaxGeometry(x: readonly number[], mask: readonly number[] | null): { d: [number, number, number]; m: [number, number, number] } {
  const r = x.length;
  const S = x[r - 1];
  const lead = x.slice(0, -1);
  const d: [number, number, number] = r > 4 ? [lead.slice(0, -2).reduce((a, b) => a * b, 1), lead[r - 3], lead[r - 2]] : ([...[1, 1, 1], ...lead].slice(-3) as [number, number, number]);
  if (!mask) return { d, m: [0, 0, 0] };
  if (r > 4) return { d, m: [d[1] * d[2] * S, d[2] * S, S] };
  const mk = [...[1, 1, 1], ...mask.slice(0, -1)].slice(-3);
  const m: [number, number, number] = [0, 0, 0];
  let stride = S;
  for (let i = 2; i >= 0; i--) {
    m[i] = mk[i] === 1 ? 0 : stride;
    stride *= mk[i];
  }
  return { d, m };
}

function register(backendName: string): void {
  const reg = (kernelName: string, names: string[], outShape: (ins: Record<string, tf.TensorInfo>) => number[], compute: Parameters<typeof kernelFunc>[3]) =>
    tf.registerKernel({ kernelName, backendName, kernelFunc: kernelFunc(backendName, names, outShape, compute) });
  const same = (ins: Record<string, tf.TensorInfo>) => [...ins.x.shape];
  reg(K.rmsNorm, ['x', 'w'], same, (ad, d, out, ins, a) => ad.norm!(d.x!, d.w!, null, out, rowsOf(ins.x), lastDim(ins.x), a.eps as number, 0, threads()));
  reg(K.layerNorm, ['x', 'w', 'b'], same, (ad, d, out, ins, a) => ad.norm!(d.x!, d.w!, d.b!, out, rowsOf(ins.x), lastDim(ins.x), a.eps as number, 1, threads()));
  reg(K.rope, ['x', 'cos', 'sin'], same, (ad, d, out, ins, a) => {
    const [B, H, T, hd] = ins.x.shape;
    ad.rope!(d.x!, d.cos!, d.sin!, out, B, H, T, hd, ins.cos.shape[0] === B && B > 1 ? 1 : 0, a.scale as number, threads());
  });
  reg(K.softmax, ['x', 'mask'], same, (ad, d, out, ins) => {
    const g = softmaxGeometry(ins.x.shape, ins.mask ? ins.mask.shape : null);
    ad.softmax!(d.x!, d.mask, out, ...g.d, lastDim(ins.x), ...g.m, threads());
  });
  const stock = tf.getKernel(tf.Transpose, backendName);
  if (stock && !wrappedTranspose.has(backendName)) {
    wrappedTranspose.add(backendName);
    const native = kernelFunc(backendName, ['x'], (ins) => { const [a, b, c, e] = ins.x.shape; return [a, c, b, e]; }, (ad, d, out, ins) => {
      const [A, B, C, D] = ins.x.shape;
      ad.transpose0213!(d.x!, out, A, B, C, D, threads());
    });
    tf.unregisterKernel(tf.Transpose, backendName);
    tf.registerKernel({
      // The stock config's setupFunc binds the wasm function again for every new wasm backend (a backend removed
      // and started again, as shutdownEngine/initEngine do): without it the stock path calls a dead module.
      ...stock,
      kernelFunc: (args) => {
        const x = args.inputs.x as tf.TensorInfo;
        const perm = (args.attrs as { perm: number[] }).perm;
        const ok = allowed && state?.enabled && x.dtype === 'float32' && x.shape.length === 4 && perm.join() === '0,2,1,3' && x.shape[1] > 1 && x.shape[2] > 1 && tf.util.sizeFromShape(x.shape) >= TRANSPOSE_MIN;
        if (ok) {
          try {
            return native(args) as tf.TensorInfo;
          } catch (e) {
            failAtRunTime(e);
          }
        }
        return stock.kernelFunc(args) as tf.TensorInfo;
      },
    });
  }
}

/** Each kernel once on a small case against a float64 reference of its definition; throws what differs. */
function selfTest(ad: NativeAddon): void {
  let seed = 7;
  const rand = (n: number) => Float32Array.from({ length: n }, () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 1073741824 - 1) * 2);
  const check = (what: string, got: Float32Array, want: (i: number) => number) => {
    for (let i = 0; i < got.length; i++)
      if (!(Math.abs(got[i] - want(i)) <= 1e-5 * Math.max(1, Math.abs(want(i))))) throw new Error(`${what} self-test: [${i}] is ${got[i]}, not ${want(i)}`);
  };
  const [R, D] = [3, 10];
  const x = rand(R * D);
  const w = rand(D);
  const b = rand(D);
  const out = new Float32Array(R * D);
  const rowStat = (r: number, f: (v: number) => number) => x.slice(r * D, r * D + D).reduce((s, v) => s + f(v), 0) / D;
  ad.norm!(x, w, null, out, R, D, 1e-6, 0, 2);
  check('rmsNorm', out, (i) => (w[i % D] * x[i]) / Math.sqrt(rowStat(Math.floor(i / D), (v) => v * v) + 1e-6));
  ad.norm!(x, w, b, out, R, D, 1e-5, 1, 2);
  check('layerNorm', out, (i) => {
    const r = Math.floor(i / D);
    const mu = rowStat(r, (v) => v);
    return ((x[i] - mu) / Math.sqrt(rowStat(r, (v) => (v - mu) ** 2) + 1e-5)) * w[i % D] + b[i % D];
  });
  // rope: B 1, H 2, T 3, hd 4, on x's first 24 values.
  const [H, T, hd] = [2, 3, 4];
  const cos = rand(T * hd);
  const sin = rand(T * hd);
  const ro = new Float32Array(H * T * hd);
  ad.rope!(x.subarray(0, H * T * hd), cos, sin, ro, 1, H, T, hd, 0, 0.5, 2);
  check('rope', ro, (i) => {
    const j = i % hd;
    const base = i - j;
    const t = Math.floor(i / hd) % T;
    const rot = j < hd / 2 ? -x[base + j + hd / 2] : x[base + j - hd / 2];
    return (x[i] * cos[t * hd + j] + rot * sin[t * hd + j]) * 0.5;
  });
  const mask = rand(D);
  ad.softmax!(x, mask, out, 1, 1, R, D, 0, 0, 0, 2);
  check('softmax', out, (i) => {
    const r = Math.floor(i / D);
    const e = Array.from({ length: D }, (_, j) => Math.exp(x[r * D + j] + mask[j]));
    return e[i % D] / e.reduce((s, v) => s + v, 0);
  });
  ad.transpose0213!(x.subarray(0, 24), ro, 1, 2, 3, 4, 2);
  check('transpose0213', ro, (i) => {
    const [c, bb, e] = [Math.floor(i / 8), Math.floor(i / 4) % 2, i % 4];
    return x[(bb * 3 + c) * 4 + e];
  });
}

/** Called by initEngine with its native mode: with 'off', every native kernel is off (the stock path, tested). */
export function allowNativeOps(allow: boolean): void {
  allowed = allow;
}

/** Decides once per process whether the fused kernels run, and registers them when they do. */
export function nativeOpsInfo(): NativeOpsInfo {
  if (!allowed) return { enabled: false, reason: 'turned off', backends: [] };
  if (state) return state;
  try {
    const ad = blasFreeAddon();
    if (!ad.norm || !ad.rope || !ad.softmax || !ad.transpose0213) throw new Error('the addon has no fused kernels');
    selfTest(ad);
    addon = ad;
    state = { enabled: true, backends: [...BACKENDS] };
    for (const b of BACKENDS) register(b);
  } catch (e) {
    state = { enabled: false, reason: (e as Error).message.split('\n')[0], backends: [] };
  }
  return state;
}

function failAtRunTime(e: unknown): void {
  state = { enabled: false, backends: [], reason: `a native op failed at run time (${(e instanceof Error ? e.message : String(e)).split('\n')[0]}); stock kernels from then on` };
}

/** Whether a fused kernel may serve a call on these tensors now (see the header). */
function usable(...ts: (tf.Tensor | null | undefined)[]): boolean {
  if (tf.engine().state.gradientDepth > 0) return false;
  const info = nativeOpsInfo();
  return info.enabled && info.backends.includes(tf.getBackend()) && ts.every((t) => !t || t.dtype === 'float32');
}

function run(kernel: string, inputs: Record<string, tf.Tensor>, attrs: tf.NamedAttrMap): tf.Tensor | null {
  try {
    return tf.engine().runKernel(kernel, inputs as tf.NamedTensorMap, attrs) as tf.Tensor;
  } catch (e) {
    failAtRunTime(e);
    return null;
  }
}

const vector = (w: tf.Tensor, d: number) => w.size === d && w.shape[w.rank - 1] === d;

/** w * x / sqrt(mean(x^2) + eps) over the last axis, or null (see the header). */
export function nativeRmsNorm(x: tf.Tensor, w: tf.Tensor, eps: number): tf.Tensor | null {
  const d = x.shape[x.rank - 1];
  return x.rank >= 1 && vector(w, d) && usable(x, w) ? run(K.rmsNorm, { x, w }, { eps }) : null;
}

/** LayerNorm over the last axis (biased variance), or null. */
export function nativeLayerNorm(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor | null {
  const d = x.shape[x.rank - 1];
  return x.rank >= 1 && vector(w, d) && vector(b, d) && usable(x, w, b) ? run(K.layerNorm, { x, w, b }, { eps }) : null;
}

/** (x * cos + rotate_half(x) * sin) * scale for x [B, H, T, hd] and cos/sin [B or 1, 1, T, hd], or null. */
export function nativeRope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, scale: number): tf.Tensor | null {
  if (x.rank !== 4 || cos.rank !== 4 || !tf.util.arraysEqual(cos.shape, sin.shape)) return null;
  const [B, , T, hd] = x.shape;
  const [cb, c1, ct, cd] = cos.shape;
  if (!(cb === B || cb === 1) || c1 !== 1 || ct !== T || cd !== hd || hd % 2 !== 0 || !usable(x, cos, sin)) return null;
  return run(K.rope, { x, cos, sin }, { scale });
}

/** softmax(x + mask) over the last axis, the mask broadcast over any leading axis of size 1, or null. */
export function nativeMaskedSoftmax(x: tf.Tensor, mask?: tf.Tensor | null): tf.Tensor | null {
  if (x.rank < 1 || x.size === 0) return null;
  if (mask) {
    const S = x.shape[x.rank - 1];
    if (mask.rank > x.rank || mask.shape[mask.rank - 1] !== S) return null;
    // Every leading axis of the mask equals the scores' or is 1, and a rank > 4 mask folds only when it is full.
    const off = x.rank - mask.rank;
    if (!mask.shape.every((n, i) => n === x.shape[off + i] || n === 1)) return null;
    if (x.rank > 4 && !tf.util.arraysEqual(mask.shape, x.shape)) return null;
  }
  return usable(x, mask) ? run(K.softmax, mask ? { x, mask } : { x }, {}) : null;
}
