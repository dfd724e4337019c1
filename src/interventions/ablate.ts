// Ablation: replace the selected positions with zeros or with a mean vector (Neo et al. 2024 ablate
// object tokens with the mean over a dataset's image tokens; the default mean is over the selection).
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../errors';
import type { HookFn } from '../models/hooks';
import type { Tracker } from './guard';
import { sourceOf, sourceVectors } from './patch';
import type { AblateSpec, CompileContext, CompiledPart } from './types';
import { gatherRows, resolveRows, rowWriter, targetHooks, vectorTensor } from './write';

export function compileAblate(spec: AblateSpec, ctx: CompileContext, tracker: Tracker): CompiledPart {
  const what = spec.label ?? `ablate (${spec.mode})`;
  if (spec.mode !== 'zero' && spec.mode !== 'mean') throw new InputError(`${what}: mode must be "zero" or "mean", got ${JSON.stringify(spec.mode)}`);
  const sel = resolveRows(spec.at, ctx, spec.rows, what);
  const owned: tf.Tensor[] = [];
  let fixed: tf.Tensor | null = null; // [1, D]
  if (spec.mode === 'mean' && Array.isArray(spec.mean)) fixed = vectorTensor(spec.mean, `${what}: mean`);
  const hooks: [string, HookFn][] = [];
  for (const { hook } of targetHooks(spec, ctx, what)) {
    let vec = fixed;
    if (spec.mode === 'mean' && spec.mean && !Array.isArray(spec.mean)) {
      const ref = spec.mean;
      const src = sourceOf(ref, ctx, what);
      const h = ref.hook ?? hook;
      // Mean over every source row's selected positions.
      vec = tf.keep(
        tf.tidy(() => tf.mean(tf.concat(src.rows.map((_, b) => sourceVectors({ ...ref, row: b }, src, h, b, spec.at, what)), 0), 0, true)),
      );
      owned.push(vec);
    }
    hooks.push([
      hook,
      rowWriter(sel, ctx, tracker, (value, flat) => {
        const D = value.shape[2] as number;
        if (spec.mode === 'zero') return tf.zeros([flat.length, D]);
        const v = vec ?? tf.mean(gatherRows(value, flat), 0, true);
        if (v.shape[1] !== D) throw new InputError(`${what}: mean vector has ${v.shape[1]} values, d_model is ${D}`);
        return tf.tile(v, [flat.length, 1]);
      }),
    ]);
  }
  if (fixed) owned.push(fixed);
  return { hooks, owned };
}
