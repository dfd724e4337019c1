// Steering: add `scale * vector` to the selected positions (a direction from a probe, a mean difference
// between conditions, or another run's state).
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../errors';
import type { HookFn } from '../models/hooks';
import type { Tracker } from './guard';
import { sourceOf, sourceVectors } from './patch';
import type { CompileContext, CompiledPart, SteerSpec } from './types';
import { gatherRows, resolveRows, rowWriter, targetHooks, vectorTensor } from './write';

export function compileSteer(spec: SteerSpec, ctx: CompileContext, tracker: Tracker): CompiledPart {
  const what = spec.label ?? 'steer';
  const scale = spec.scale ?? 1;
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new InputError(`${what}: scale must be a finite number`);
  const sel = resolveRows(spec.at, ctx, spec.rows, what);
  const owned: tf.Tensor[] = [];
  const hooks: [string, HookFn][] = [];
  for (const { hook } of targetHooks(spec, ctx, what)) {
    let vec: tf.Tensor;
    if (Array.isArray(spec.vector)) vec = vectorTensor(spec.vector, `${what}: vector`);
    else {
      const ref = spec.vector;
      const src = sourceOf(ref, ctx, what);
      vec = tf.keep(tf.tidy(() => tf.mean(sourceVectors(ref, src, ref.hook ?? hook, ref.row ?? 0, spec.at, what), 0, true)));
    }
    const scaled = tf.keep(tf.tidy(() => tf.mul(vec, scale)));
    vec.dispose();
    owned.push(scaled);
    hooks.push([
      hook,
      rowWriter(sel, ctx, tracker, (value, flat) => {
        if (scaled.shape[1] !== value.shape[2]) throw new InputError(`${what}: vector has ${scaled.shape[1]} values, d_model is ${value.shape[2]}`);
        return tf.add(gatherRows(value, flat), scaled);
      }),
    ]);
  }
  return { hooks, owned };
}
