// Trainable weights as plain named tensors (no tf.Variable: names stay free of the global registry, and a
// training step is a pure function old params -> new params). Seeded init, F32 snapshots for checkpoints.
import * as tf from '@tensorflow/tfjs-core';
import { hashSeed, mulberry32 } from '../data/random';

export type Params = Map<string, tf.Tensor>;

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** Standard normal draws from a seeded uniform stream (Box-Muller on mulberry32: identical on every platform). */
export function seededNormal(seed: number, n: number, std: number): Float32Array {
  const rng = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = Math.max(rng(), 1e-12);
    const u2 = rng();
    const r = Math.sqrt(-2 * Math.log(u1)) * std;
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

export type InitKind = { normal: number } | 'zeros' | 'ones';

/** One parameter, seeded by (seed, name) so adding a parameter never shifts the others' values. */
export function initParam(seed: number, name: string, shape: number[], init: InitKind): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data =
    init === 'zeros' ? new Float32Array(n) : init === 'ones' ? new Float32Array(n).fill(1) : seededNormal(hashSeed(seed, name), n, init.normal);
  return { shape, data };
}

export function toDevice(host: Map<string, HostTensor>): Params {
  const out: Params = new Map();
  for (const [k, v] of host) out.set(k, tf.tensor(v.data, v.shape, 'float32'));
  return out;
}

export function toHost(params: Params): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [k, v] of params) out.set(k, { shape: [...v.shape], data: Float32Array.from(v.dataSync() as Float32Array) });
  return out;
}

export function disposeParams(p: Params | undefined): void {
  if (p) tf.dispose([...p.values()]);
}

export function countParams(p: Map<string, { shape: readonly number[] }>): number {
  let n = 0;
  for (const v of p.values()) n += v.shape.reduce((a, b) => a * b, 1);
  return n;
}

/** Sub-map of the names with a prefix. */
export function pick(p: Params, prefix: string): Params {
  return new Map([...p].filter(([k]) => k.startsWith(prefix)));
}
