// A deterministic, resumable training loop: AdamW on named tensors, a fixed batch order that is a function
// of the step, checkpoints (safetensors: params + Adam moments, and a JSON state) every few steps.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../io/safetensors';
import { toDevice, toHost, type HostTensor, type Params } from './params';
import { shardRows, type ShardGroup } from './shards';

export interface Progress {
  stage: string;
  step: number;
  steps: number;
  loss: number;
  elapsedS: number;
}

export interface LoopOptions<B> {
  stage: string;
  steps: number;
  /** Batch for a step (a pure function of the step, so a resumed run sees the same data). */
  batch: (step: number) => B;
  /** Scalar loss; `get` resolves trainable and frozen parameters by name. */
  loss: (get: (name: string) => tf.Tensor, batch: B) => tf.Scalar | tf.Tensor;
  trainable: Params;
  frozen: Params;
  lr: number;
  warmup: number;
  /** Final learning rate as a fraction of lr (cosine decay). */
  minLrFrac?: number;
  weightDecay?: number;
  clip?: number;
  /** Checkpoint folder for this stage; no checkpoints when absent. */
  dir?: string;
  ckptEvery?: number;
  /** Stop (after checkpointing) at this step: simulates an interruption in tests. */
  stopAt?: number;
  onProgress?: (p: Progress) => void;
  /**
   * Splits each batch into `group.shards` row shards whose gradients are averaged (src/train/shards.ts), this
   * worker computing its own shards: see trainSharded. Absent, a step is one batch, as the shipped v5 and 8-layer
   * recipes were trained.
   */
  group?: ShardGroup;
}

export interface LoopResult {
  params: Params;
  losses: number[];
  done: boolean;
  seconds: number;
}

interface StageState {
  stage: string;
  step: number;
  steps: number;
  done: boolean;
  losses: number[];
  seconds: number;
}

export function lrAt(o: Pick<LoopOptions<unknown>, 'lr' | 'warmup' | 'steps' | 'minLrFrac'>, step: number): number {
  if (step < o.warmup) return (o.lr * (step + 1)) / o.warmup;
  const t = (step - o.warmup) / Math.max(1, o.steps - o.warmup);
  const min = o.minLrFrac ?? 0.1;
  return o.lr * (min + (1 - min) * 0.5 * (1 + Math.cos(Math.PI * t)));
}

type HostParams = Map<string, HostTensor>;

function saveCkpt(dir: string, params: HostParams, m: HostParams, v: HostParams, state: StageState): void {
  fs.mkdirSync(dir, { recursive: true });
  const tensors: Record<string, TensorToWrite> = {};
  const put = (prefix: string, p: HostParams) => {
    for (const [k, h] of p) tensors[prefix + k] = { dtype: 'F32', shape: h.shape, data: h.data };
  };
  put('param.', params);
  put('adam_m.', m);
  put('adam_v.', v);
  writeSafetensors(path.join(dir, 'ckpt.safetensors'), tensors);
  const tmp = path.join(dir, '.state.json.tmp');
  fs.writeFileSync(tmp, JSON.stringify(state, null, 1));
  fs.renameSync(tmp, path.join(dir, 'state.json'));
}

/** Reads a stage checkpoint: host tensors by prefix ('param.', 'adam_m.', 'adam_v.'). */
export function readCkpt(dir: string): { state: StageState; groups: Record<string, Map<string, HostTensor>> } | null {
  const sp = path.join(dir, 'state.json');
  if (!fs.existsSync(sp) || !fs.existsSync(path.join(dir, 'ckpt.safetensors'))) return null;
  const state = JSON.parse(fs.readFileSync(sp, 'utf8')) as StageState;
  const groups: Record<string, Map<string, HostTensor>> = { 'param.': new Map(), 'adam_m.': new Map(), 'adam_v.': new Map() };
  const ck = SafetensorsFile.open(path.join(dir, 'ckpt.safetensors'));
  try {
    for (const [n, e] of ck.entries) {
      const prefix = Object.keys(groups).find((p) => n.startsWith(p));
      if (prefix) groups[prefix].set(n.slice(prefix.length), { shape: [...e.shape], data: ck.readF32(n) });
    }
  } finally {
    ck.close();
  }
  return { state, groups };
}

/** Where a stage starts, on the host: its checkpoint (weights, Adam moments, record), else `trainable` with zero moments. */
function startOf(o: Pick<LoopOptions<unknown>, 'trainable' | 'dir'>, names: string[]): { params: HostParams; m: HostParams; v: HostParams; start: number; losses: number[]; seconds: number; done: boolean } {
  const resumed = o.dir ? readCkpt(o.dir) : null;
  if (resumed) {
    const got = (g: HostParams) => new Map(names.map((n) => [n, g.get(n) ?? missing(n)]));
    const { step, losses, seconds, done } = resumed.state;
    return { params: got(resumed.groups['param.']), m: got(resumed.groups['adam_m.']), v: got(resumed.groups['adam_v.']), start: step, losses, seconds, done };
  }
  const params = toHost(new Map(names.map((n) => [n, o.trainable.get(n)!])));
  const zeros = () => new Map(names.map((n) => [n, { shape: params.get(n)!.shape, data: new Float32Array(params.get(n)!.data.length) }]));
  return { params, m: zeros(), v: zeros(), start: 0, losses: [], seconds: 0, done: false };
}

/** Trains `trainable` in place of a copy; returns the new trainable params (the caller owns them). */
export function trainLoop<B>(o: LoopOptions<B>): LoopResult {
  if (o.group) return trainSharded(o, o.group);
  const names = [...o.trainable.keys()];
  const from = startOf(o, names);
  const { start, losses, seconds } = from;
  if (from.done) return { params: toDevice(from.params), losses, done: true, seconds };
  let params = toDevice(from.params);
  let m = toDevice(from.m);
  let v = toDevice(from.v);
  const b1 = 0.9;
  const b2 = 0.98;
  const eps = 1e-8;
  const wd = o.weightDecay ?? 0;
  const t0 = Date.now();
  const state = (step: number, done: boolean): StageState => ({ stage: o.stage, step, steps: o.steps, done, losses, seconds: seconds + (Date.now() - t0) / 1000 });
  for (let step = start; step < o.steps; step++) {
    if (o.stopAt !== undefined && step >= o.stopAt) {
      if (o.dir) saveCkpt(o.dir, toHost(params), toHost(m), toHost(v), state(step, false));
      return { params: dispose2(params, m, v), losses, done: false, seconds: state(step, false).seconds };
    }
    const batch = o.batch(step);
    const lr = lrAt(o, step);
    const next = tf.tidy(() => {
      const { value, grads } = tf.valueAndGrads(lossOf(o, names, batch))(names.map((n) => params.get(n)!));
      let scale: tf.Tensor = tf.scalar(1);
      if (o.clip) {
        const norm = tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g)))));
        scale = tf.minimum(tf.scalar(1), tf.div(o.clip, tf.add(norm, 1e-6)));
      }
      const bc1 = 1 - Math.pow(b1, step + 1);
      const bc2 = 1 - Math.pow(b2, step + 1);
      const np: tf.Tensor[] = [];
      const nm: tf.Tensor[] = [];
      const nv: tf.Tensor[] = [];
      names.forEach((n, i) => {
        const g = tf.mul(grads[i], scale);
        const mi = tf.add(tf.mul(m.get(n)!, b1), tf.mul(g, 1 - b1));
        const vi = tf.add(tf.mul(v.get(n)!, b2), tf.mul(tf.square(g), 1 - b2));
        const p = params.get(n)!;
        let upd = tf.div(tf.div(mi, bc1), tf.add(tf.sqrt(tf.div(vi, bc2)), eps));
        if (wd && p.rank >= 2) upd = tf.add(upd, tf.mul(p, wd));
        np.push(tf.sub(p, tf.mul(upd, lr)));
        nm.push(mi);
        nv.push(vi);
      });
      return { value, np, nm, nv };
    });
    const loss = (next.value.dataSync() as Float32Array)[0];
    next.value.dispose();
    tf.dispose([...params.values(), ...m.values(), ...v.values()]);
    params = new Map(names.map((n, i) => [n, next.np[i]]));
    m = new Map(names.map((n, i) => [n, next.nm[i]]));
    v = new Map(names.map((n, i) => [n, next.nv[i]]));
    losses.push(loss);
    o.onProgress?.({ stage: o.stage, step: step + 1, steps: o.steps, loss, elapsedS: seconds + (Date.now() - t0) / 1000 });
    if (!Number.isFinite(loss)) throw new Error(`${o.stage}: loss is ${loss} at step ${step}; lower the learning rate`);
    if (o.dir && o.ckptEvery && (step + 1) % o.ckptEvery === 0 && step + 1 < o.steps) saveCkpt(o.dir, toHost(params), toHost(m), toHost(v), state(step + 1, false));
  }
  const final = state(o.steps, true);
  if (o.dir) saveCkpt(o.dir, toHost(params), toHost(m), toHost(v), final);
  return { params: dispose2(params, m, v), losses, done: true, seconds: final.seconds };
}

/**
 * A sharded stage's loop. Each step this worker runs its shards of the batch (forward and backward, tfjs) and
 * writes their gradients to the group; every worker then combines all shards in shard order and takes the same
 * AdamW step on the host, in float64 rounded once to float32 per stored value (the gradient is there already, and
 * one fused pass over ~0.5 M floats takes a few ms where the per-tensor ops above took ~25 ms a step). Hyper-
 * parameters as trainLoop's (b1 0.9, b2 0.98, eps 1e-8, global-norm clip, decoupled weight decay on matrices), so
 * a sharded recipe differs from its unsharded twin by the shards and the float sums only. A replica (rank > 0)
 * reads the checkpoint its group resumes from and writes nothing.
 */
function trainSharded<B>(o: LoopOptions<B>, group: ShardGroup): LoopResult {
  const names = [...o.trainable.keys()];
  const dir = group.rank === 0 ? o.dir : undefined;
  const { params, m, v, start, losses, seconds, done } = startOf(o, names);
  if (done) return { params: toDevice(params), losses, done: true, seconds };
  const size = names.reduce((a, n) => a + params.get(n)!.data.length, 0);
  if (size !== group.size) throw new Error(`${o.stage}: ${size} trainable floats, the shard group holds ${group.size}`);
  const decays = names.map((n) => (o.weightDecay ?? 0) > 0 && params.get(n)!.shape.length >= 2);
  const flat = new Float32Array(group.size);
  const t0 = Date.now();
  const state = (step: number, done: boolean): StageState => ({ stage: o.stage, step, steps: o.steps, done, losses, seconds: seconds + (Date.now() - t0) / 1000 });
  try {
    for (let step = start; step < o.steps; step++) {
      if (o.stopAt !== undefined && step >= o.stopAt) {
        if (dir) saveCkpt(dir, params, m, v, state(step, false));
        return { params: toDevice(params), losses, done: false, seconds: state(step, false).seconds };
      }
      const batch = o.batch(step);
      const xs = toDevice(params);
      try {
        for (const s of group.mine()) {
          const { part, rows } = shardRows(batch, s, group.shards);
          const slot = group.slot(step, s);
          let loss = 0;
          if (rows > 0)
            tf.tidy(() => {
              const { value, grads } = tf.valueAndGrads(lossOf(o, names, part))(names.map((n) => xs.get(n)!));
              loss = (value.dataSync() as Float32Array)[0];
              let off = 0;
              for (const g of grads) {
                slot.set(g.dataSync() as Float32Array, off);
                off += g.size;
              }
            });
          group.put(step, s, loss, rows);
        }
      } finally {
        tf.dispose([...xs.values()]);
      }
      const loss = group.combine(step, flat);
      hostAdamW(flat, names.map((n) => [params.get(n)!.data, m.get(n)!.data, v.get(n)!.data]), decays, step, lrAt(o, step), o.clip, o.weightDecay ?? 0);
      losses.push(loss);
      o.onProgress?.({ stage: o.stage, step: step + 1, steps: o.steps, loss, elapsedS: seconds + (Date.now() - t0) / 1000 });
      if (!Number.isFinite(loss)) throw new Error(`${o.stage}: loss is ${loss} at step ${step}; lower the learning rate`);
      if (dir && o.ckptEvery && (step + 1) % o.ckptEvery === 0 && step + 1 < o.steps) saveCkpt(dir, params, m, v, state(step + 1, false));
    }
  } catch (e) {
    group.fail((e as Error).message ?? String(e));
    throw e;
  }
  const final = state(o.steps, true);
  if (dir) saveCkpt(dir, params, m, v, final);
  return { params: toDevice(params), losses, done: true, seconds: final.seconds };
}

/** One AdamW step in place on host arrays (p, m, v per tensor) from a flat gradient; see trainSharded. */
function hostAdamW(flat: Float32Array, tensors: [Float32Array, Float32Array, Float32Array][], decays: boolean[], step: number, lr: number, clip: number | undefined, wd: number): void {
  const b1 = 0.9;
  const b2 = 0.98;
  const eps = 1e-8;
  let scale = 1;
  if (clip) {
    let sq = 0;
    for (let i = 0; i < flat.length; i++) sq += flat[i] * flat[i];
    scale = Math.min(1, clip / (Math.sqrt(sq) + 1e-6));
  }
  const bc1 = 1 - Math.pow(b1, step + 1);
  const bc2 = 1 - Math.pow(b2, step + 1);
  let off = 0;
  tensors.forEach(([p, m, v], t) => {
    const d = decays[t] ? wd : 0;
    for (let i = 0; i < p.length; i++) {
      const g = flat[off + i] * scale;
      const mi = b1 * m[i] + (1 - b1) * g;
      const vi = b2 * v[i] + (1 - b2) * g * g;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] - lr * (mi / bc1 / (Math.sqrt(vi / bc2) + eps) + d * p[i]);
    }
    off += p.length;
  });
}

/** The stage's loss as a function of the trainable tensors (in `names` order), for tf.valueAndGrads. */
function lossOf<B>(o: LoopOptions<B>, names: string[], batch: B): (...ts: tf.Tensor[]) => tf.Scalar {
  return (...ts) => {
    const local = new Map(names.map((n, i) => [n, ts[i]]));
    return o.loss((n) => local.get(n) ?? o.frozen.get(n) ?? missing(n), batch) as tf.Scalar;
  };
}

function dispose2(params: Params, m: Params, v: Params): Params {
  tf.dispose([...m.values(), ...v.values()]);
  return params;
}

function missing(n: string): never {
  throw new Error(`training: parameter ${n} is neither trainable nor frozen`);
}
