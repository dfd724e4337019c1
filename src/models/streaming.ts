// Layer-by-layer weight streaming (the plan that decides it: ./memory-plan.ts). Big checkpoints keep their weights compact on the host
// (F16/BF16 bit patterns, or F32) and upload one unit (a decoder layer, a vision block, a chunk of the head)
// at a time, so a 7B model runs inside wasm's 4 GB heap. The decoder asks a WeightProvider for each layer's
// tensors and gives them back after the layer: hooks, patching and caching see the same forward either way.
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError } from '../errors';
import { toF32, transpose2d } from '../io/dtype';
import type { CompactTensor } from '../io/safetensors';
import type { WeightSource } from './weights';
import type { MemoryPlan } from './memory-plan';

// ---------------------------------------------------------------------------------------------
// Weight providers

/** Weights of numbered units (layers, blocks, head chunks), handed out for the span of one use. */
export interface WeightProvider<T> {
  /** True when units live on the host and are uploaded on `acquire`. */
  readonly streaming: boolean;
  readonly size: number;
  /** The unit's tensors (uploaded when streaming). Pair every call with `release(i)`. */
  acquire(i: number): T;
  /** Ends a use: a streamed unit's device copy is freed (tensors the gradient tape saved stay alive on their own). */
  release(i: number): void;
  dispose(): void;
}

/** Units kept on the device for the model's lifetime. */
export function residentProvider<T>(units: T[], free: (u: T) => void): WeightProvider<T> {
  return {
    streaming: false,
    size: units.length,
    acquire(i) {
      const u = units[i];
      if (u === undefined) throw new RangeError(`weight unit ${i} of ${units.length} does not exist`);
      return u;
    },
    release() {},
    dispose() {
      units.forEach(free);
      units.length = 0;
    },
  };
}

/** Units kept compact on the host, uploaded on acquire and freed on release (nested acquires share one upload). */
export function streamedProvider<H, T>(host: H[], upload: (h: H) => T, free: (t: T) => void): WeightProvider<T> {
  const live = new Map<number, { t: T; uses: number }>();
  return {
    streaming: true,
    size: host.length,
    acquire(i) {
      const cur = live.get(i);
      if (cur) {
        cur.uses++;
        return cur.t;
      }
      const h = host[i];
      if (h === undefined) throw new RangeError(`weight unit ${i} of ${host.length} does not exist`);
      // Kept: the upload must outlive whatever tidy scope the caller is in; release() frees it.
      const t = upload(h);
      for (const x of tensorsOf(t)) tf.keep(x);
      live.set(i, { t, uses: 1 });
      return t;
    },
    release(i) {
      const cur = live.get(i);
      if (!cur) return;
      if (--cur.uses > 0) return;
      live.delete(i);
      free(cur.t);
    },
    dispose() {
      for (const { t } of live.values()) free(t);
      live.clear();
      host.length = 0;
    },
  };
}

function tensorsOf(x: unknown): tf.Tensor[] {
  if (x instanceof tf.Tensor) return [x];
  if (x && typeof x === 'object') return Object.values(x).flatMap(tensorsOf);
  return [];
}

// ---------------------------------------------------------------------------------------------
// Host-side tensors in stored precision

export type HostTensor = CompactTensor;

export function hostNumel(t: HostTensor): number {
  return t.shape.reduce((a, d) => a * d, 1);
}

/** Uploads a host tensor as float32 (F16/BF16 converted exactly). */
export function uploadHost(t: HostTensor): tf.Tensor {
  const n = hostNumel(t);
  let data = toF32(t.dtype, t.data);
  // Backends may keep a reference to the array (cpu, tensorflow): hand over an exact-size array of our own.
  if (data === t.data || data.length !== n) data = data.slice(0, n);
  return tf.tensor(data, [...t.shape], 'float32');
}

/** Rows [r0, r1) of a [rows, cols] matrix, transposed to [cols, r1 - r0] (a column chunk of the head). */
export function hostRowsTransposed(t: HostTensor, r0: number, r1: number): HostTensor {
  const cols = t.shape[1];
  const band = t.data.subarray(r0 * cols, r1 * cols);
  const out = transpose2d(band.slice() as Float32Array | Uint16Array, r1 - r0, cols);
  return { dtype: t.dtype, shape: [cols, r1 - r0], data: out };
}

// ---------------------------------------------------------------------------------------------
// Sources that can hand out compact data and carry the memory plan

/** A WeightSource that can also read compact data and says how the model must hold its weights. */
export interface StreamableSource extends WeightSource {
  readonly memory?: MemoryPlan;
  compact?(name: string, transpose?: boolean): HostTensor;
}

export function memoryPlanOf(src: WeightSource): MemoryPlan | undefined {
  return (src as StreamableSource).memory;
}

/** A tensor in stored precision (F32 for sources without compact reads); `transpose` swaps a 2-D [out, in]. */
export function readHost(src: WeightSource, name: string, transpose = false): HostTensor {
  const s = src as StreamableSource;
  if (s.compact) return s.compact(name, transpose);
  const shape = src.shape(name);
  if (!shape) throw new CheckpointError(`${src.origin}: missing tensor ${name}`);
  return { dtype: 'F32', shape: transpose ? [shape[1], shape[0]] : [...shape], data: src.f32(name, transpose) };
}
