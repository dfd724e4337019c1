// A deterministic, resumable training loop: AdamW on named tensors, a fixed batch order that is a function
// of the step, checkpoints (safetensors: params + Adam moments, and a JSON state) every few steps.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../io/safetensors';
import { toDevice, toHost, type HostTensor, type Params } from './params';

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

function saveCkpt(dir: string, params: Params, m: Params, v: Params, state: StageState): void {
  fs.mkdirSync(dir, { recursive: true });
  const tensors: Record<string, TensorToWrite> = {};
  const put = (prefix: string, p: Params) => {
    for (const [k, h] of toHost(p)) tensors[prefix + k] = { dtype: 'F32', shape: h.shape, data: h.data };
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

/** Trains `trainable` in place of a copy; returns the new trainable params (the caller owns them). */
export function trainLoop<B>(o: LoopOptions<B>): LoopResult {
  const names = [...o.trainable.keys()];
  let params: Params = new Map(names.map((n) => [n, tf.clone(o.trainable.get(n)!)]));
  let m: Params = new Map(names.map((n) => [n, tf.zerosLike(params.get(n)!)]));
  let v: Params = new Map(names.map((n) => [n, tf.zerosLike(params.get(n)!)]));
  let start = 0;
  let losses: number[] = [];
  let seconds = 0;
  const resumed = o.dir ? readCkpt(o.dir) : null;
  if (resumed) {
    tf.dispose([...params.values(), ...m.values(), ...v.values()]);
    params = toDevice(resumed.groups['param.']);
    m = toDevice(resumed.groups['adam_m.']);
    v = toDevice(resumed.groups['adam_v.']);
    start = resumed.state.step;
    losses = resumed.state.losses;
    seconds = resumed.state.seconds;
    if (resumed.state.done) return { params: dispose2(params, m, v), losses, done: true, seconds };
  }
  const b1 = 0.9;
  const b2 = 0.98;
  const eps = 1e-8;
  const wd = o.weightDecay ?? 0;
  const t0 = Date.now();
  const state = (step: number, done: boolean): StageState => ({ stage: o.stage, step, steps: o.steps, done, losses, seconds: seconds + (Date.now() - t0) / 1000 });
  for (let step = start; step < o.steps; step++) {
    if (o.stopAt !== undefined && step >= o.stopAt) {
      if (o.dir) saveCkpt(o.dir, params, m, v, state(step, false));
      return { params: dispose2(params, m, v), losses, done: false, seconds: state(step, false).seconds };
    }
    const batch = o.batch(step);
    const lr = lrAt(o, step);
    const next = tf.tidy(() => {
      const f = (...ts: tf.Tensor[]) => {
        const local = new Map(names.map((n, i) => [n, ts[i]]));
        return o.loss((n) => local.get(n) ?? o.frozen.get(n) ?? missing(n), batch) as tf.Scalar;
      };
      const { value, grads } = tf.valueAndGrads(f)(names.map((n) => params.get(n)!));
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
    if (o.dir && o.ckptEvery && (step + 1) % o.ckptEvery === 0 && step + 1 < o.steps) saveCkpt(o.dir, params, m, v, state(step + 1, false));
  }
  const final = state(o.steps, true);
  if (o.dir) saveCkpt(o.dir, params, m, v, final);
  return { params: dispose2(params, m, v), losses, done: true, seconds: final.seconds };
}

function dispose2(params: Params, m: Params, v: Params): Params {
  tf.dispose([...m.values(), ...v.values()]);
  return params;
}

function missing(n: string): never {
  throw new Error(`training: parameter ${n} is neither trainable nor frozen`);
}
