// Where model weights come from (a checkpoint, random init, a training run) and strict loading:
// every expected tensor is checked before any is read, and all problems are reported together.
import * as tf from '@tensorflow/tfjs-core';
import { filledTensor } from '../engine/filled';
import { CheckpointError } from '../errors';
import { transpose2d } from '../io/dtype';

export interface WeightSource {
  /** Human-readable origin for error messages (a folder or file). */
  readonly origin: string;
  /** Shape of a tensor in HF layout, or undefined if absent. */
  shape(name: string): readonly number[] | undefined;
  /**
   * Values as float32; `transpose` turns a 2-D HF [out, in] weight into [in, out]. With `into` (exactly the
   * tensor's size) the values are written there and `into` is returned: the loader passes the tensor's final
   * storage so nothing is copied twice.
   */
  f32(name: string, transpose?: boolean, into?: Float32Array): Float32Array;
  /** All tensor names (for "unexpected tensor" reports). */
  names(): string[];
}

export interface Expected {
  name: string;
  shape: number[];
}

/** Throws one CheckpointError listing every missing or wrong-shaped tensor (and unexpected ones under `prefixes`). */
export function checkWeights(src: WeightSource, expected: Expected[], prefixes: string[] = [], allowExtra: RegExp[] = []): void {
  const missing: string[] = [];
  const shapes: string[] = [];
  const unexpected: string[] = [];
  const want = new Set(expected.map((e) => e.name));
  for (const e of expected) {
    const s = src.shape(e.name);
    if (!s) missing.push(`missing tensor ${e.name} [${e.shape}]`);
    else if (s.length !== e.shape.length || s.some((d, i) => d !== e.shape[i]))
      shapes.push(`tensor ${e.name} has shape [${s}] but the config implies [${e.shape}]`);
  }
  for (const n of src.names()) {
    if (want.has(n) || !prefixes.some((p) => n.startsWith(p)) || allowExtra.some((r) => r.test(n))) continue;
    unexpected.push(`unexpected tensor ${n} (config and weights disagree?)`);
  }
  if (missing.length + shapes.length + unexpected.length === 0) return;
  // Each kind of problem shown (up to 8 lines each), so a missing layer cannot hide an unexpected one.
  const part = (xs: string[]) => [...xs.slice(0, 8), ...(xs.length > 8 ? [`... and ${xs.length - 8} more like these`] : [])];
  const counts = [`${missing.length} missing`, `${unexpected.length} unexpected`, `${shapes.length} with the wrong shape`].join(', ');
  throw new CheckpointError(`${src.origin}: weights do not match config.json (${counts}):\n  ${[...part(missing), ...part(unexpected), ...part(shapes)].join('\n  ')}`);
}

/** Reads one weight into a tensor (2-D linears transposed to [in, out] when asked). */
export function readTensor(src: WeightSource, name: string, transpose = false): tf.Tensor {
  const shape = src.shape(name);
  if (!shape) throw new CheckpointError(`${src.origin}: missing tensor ${name}`);
  const s = transpose ? [shape[1], shape[0]] : [...shape];
  return filledTensor(s, (dst) => {
    const got = src.f32(name, transpose, dst);
    if (got !== dst) dst.set(got); // a source that does not take `into` (it is optional) still loads right
  });
}

let fusedScratch: Float32Array | null = null;

/**
 * Several HF [out_i, in] linears as one [in, sum(out_i)] weight (fused q/k/v), written straight into the fused
 * tensor: each part is read transposed into one reused array and its rows copied to their column offset. Reading
 * the parts as tensors and concatenating them took 224 ms of issue 20's mid checkpoint (wasm's Concat, and a second
 * set of fresh heap pages; session 18).
 */
export function readFusedLinear(src: WeightSource, names: string[]): tf.Tensor {
  const shapes = names.map((n) => {
    const s = src.shape(n);
    if (!s) throw new CheckpointError(`${src.origin}: missing tensor ${n}`);
    return s;
  });
  const inDim = shapes[0][1];
  const bad = shapes.findIndex((s) => s.length !== 2 || s[1] !== inDim);
  if (bad >= 0) throw new CheckpointError(`${src.origin}: ${names[bad]} has shape [${shapes[bad]}]; fused with ${names[0]} it must be [out, ${inDim}]`);
  const outs = shapes.map((s) => s[0]);
  const total = outs.reduce((a, b) => a + b, 0);
  const need = Math.max(...outs) * inDim;
  // One array for every fused weight of a load (a fresh one per weight was garbage the size of a layer's q/k/v).
  if (!fusedScratch || fusedScratch.length < need) fusedScratch = new Float32Array(need);
  const part = fusedScratch;
  return filledTensor([inDim, total], (dst) => {
    let col = 0;
    names.forEach((n, i) => {
      const out = outs[i];
      const into = part.subarray(0, out * inDim);
      const got = src.f32(n, true, into); // [in, out] row-major
      for (let r = 0; r < inDim; r++) dst.set(got.subarray(r * out, (r + 1) * out), r * total + col);
      col += out;
    });
  });
}

export function readFusedBias(src: WeightSource, names: string[]): tf.Tensor {
  const parts = names.map((n) => readTensor(src, n));
  const fused = tf.concat(parts, 0);
  parts.forEach((p) => p.dispose());
  return fused;
}

/** A WeightSource over plain arrays (tests, random init, trained weights before saving). */
export function memorySource(origin: string, tensors: Map<string, { shape: number[]; data: Float32Array }>): WeightSource {
  return {
    origin,
    shape: (n) => tensors.get(n)?.shape,
    names: () => [...tensors.keys()],
    f32(n, transpose, into) {
      const t = tensors.get(n);
      if (!t) throw new CheckpointError(`${origin}: missing tensor ${n}`);
      if (into && into.length !== t.data.length) throw new CheckpointError(`${origin}: tensor ${n} has ${t.data.length} values; the destination holds ${into.length}`);
      if (!transpose) {
        if (!into) return t.data;
        into.set(t.data);
        return into;
      }
      const [r, c] = t.shape;
      return transpose2d(t.data, r, c, into);
    },
  };
}
