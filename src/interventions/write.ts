// Exact row writes into a [B, T, D] hook value: selected (row, position) vectors are replaced by copying
// (one gather over [value rows; new rows]), so unselected positions stay bit-identical and selected ones
// get exactly the new values (no arithmetic blend that could round).
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../errors';
import type { HookFn } from '../models/hooks';
import type { Tracker } from './guard';
import { resolveSelector, toSelector, type RowPositions, type Selector } from './selectors';
import type { CompileContext } from './types';

/** Resolved positions of a selector for every batch row the intervention applies to (others: null). */
export function resolveRows(at: Selector | string, ctx: CompileContext, rows: number[] | undefined, what: string): (RowPositions | null)[] {
  const sel = toSelector(at);
  if (rows) for (const r of rows) if (!Number.isInteger(r) || r < 0 || r >= ctx.rows.length) throw new InputError(`${what}: row ${r} is not a batch row (0..${ctx.rows.length - 1})`);
  return ctx.rows.map((g, b) => (rows && !rows.includes(b) ? null : resolveSelector(sel, g)));
}

/**
 * Selected positions of one hook call, per row, local to the call's sequence axis
 * (a prefill covers offset..offset+T-1, a decode step one generated token).
 */
export function localSelection(sel: (RowPositions | null)[], ctx: CompileContext, offset: number, T: number): number[][] {
  return sel.map((r, b) => {
    if (!r) return [];
    const promptLength = ctx.rows[b].promptLength;
    const out: number[] = [];
    for (const p of r.prompt) if (p >= offset && p < offset + T) out.push(p - offset);
    if (r.generated)
      for (let t = 0; t < T; t++) {
        const g = offset + t - promptLength;
        if (g >= 0 && g >= r.generated[0] && g < r.generated[1]) out.push(t);
      }
    return out;
  });
}

export function flatIndex(local: number[][], T: number): number[] {
  return local.flatMap((ps, b) => ps.map((t) => b * T + t));
}

/**
 * The hook of every writing intervention (patch, freeze, steer, ablate): in each call it finds the selected
 * positions, asks `rows` for their new vectors ([n, D], in `flat` order; `local` holds the same positions per
 * row, relative to `offset`), writes them exactly and reports the write to the tracker. A call none of whose
 * positions is selected (a decode step past the selection) passes through untouched.
 */
export function rowWriter(
  sel: (RowPositions | null)[],
  ctx: CompileContext,
  tracker: Tracker,
  rows: (value: tf.Tensor, flat: number[], local: number[][], offset: number) => tf.Tensor,
): HookFn {
  return (value, ev) => {
    const T = value.shape[1] as number;
    const local = localSelection(sel, ctx, ev.offset, T);
    const flat = flatIndex(local, T);
    if (flat.length === 0) return;
    const out = replaceRows(value, flat, rows(value, flat, local, ev.offset));
    tracker.wrote(value, out, flat.length);
    return out;
  };
}

/** value [B, T, D] → the selected vectors [n, D]. */
export function gatherRows(value: tf.Tensor, flat: number[]): tf.Tensor {
  const [B, T, D] = value.shape as number[];
  return tf.gather(value.reshape([B * T, D]), tf.tensor1d(flat, 'int32'));
}

/** value [B, T, D] with the vectors at `flat` replaced by `rows` [n, D] (copied exactly). */
export function replaceRows(value: tf.Tensor, flat: number[], rows: tf.Tensor): tf.Tensor {
  const [B, T, D] = value.shape as number[];
  if (rows.shape[0] !== flat.length || rows.shape[1] !== D)
    throw new InputError(`write: ${flat.length} positions selected but ${rows.shape[0]} vectors of width ${rows.shape[1]} given (d_model ${D})`);
  const map = new Int32Array(B * T);
  for (let i = 0; i < B * T; i++) map[i] = i;
  flat.forEach((f, i) => (map[f] = B * T + i));
  return tf.gather(tf.concat([value.reshape([B * T, D]), rows], 0), tf.tensor1d(map, 'int32')).reshape([B, T, D]);
}

/** Hook names of a target: an explicit hook, or `lm.blocks.{l}.{site}` for each layer. */
export function targetHooks(t: { hook?: string; layers?: number[]; site?: string }, ctx: CompileContext, what: string): { hook: string; layer: number | null }[] {
  if (t.hook) {
    if (t.layers) throw new InputError(`${what}: give either "hook" or "layers" (+ "site"), not both`);
    const m = /^lm\.blocks\.(\d+)\./.exec(t.hook);
    return [{ hook: t.hook, layer: m ? Number(m[1]) : null }];
  }
  if (!t.layers || t.layers.length === 0) throw new InputError(`${what}: needs "hook" or a non-empty "layers" list`);
  for (const l of t.layers)
    if (!Number.isInteger(l) || l < 0 || l >= ctx.numLayers) throw new InputError(`${what}: layer ${l} is outside the model's ${ctx.numLayers} layers`);
  return t.layers.map((l) => ({ hook: `lm.blocks.${l}.${t.site ?? 'resid_pre'}`, layer: l }));
}

/** A fixed vector [D] given inline. */
export function vectorTensor(v: number[], what: string): tf.Tensor {
  if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'number')) throw new InputError(`${what}: expected a list of numbers`);
  return tf.tensor2d(v, [1, v.length]);
}
