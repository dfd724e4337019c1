// Activation patching: write states cached by another run (another prompt, or another model with the
// same d_model such as a VLM's text backbone) into this run at chosen layers and positions.
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../errors';
import type { HookFn } from '../models/hooks';
import type { Tracker } from './guard';
import { resolveSelector, toSelector } from './selectors';
import type { CompileContext, CompiledPart, PatchSpec, SourceRef, SourceRun } from './types';
import { gatherRows, resolveRows, rowWriter, targetHooks } from './write';

export function sourceOf(ref: SourceRef, ctx: CompileContext, what: string): SourceRun {
  const src = ctx.sources?.[ref.cache];
  if (!src) {
    const known = Object.keys(ctx.sources ?? {});
    throw new InputError(`${what}: source cache "${ref.cache}" is not available (known: ${known.length ? known.join(', ') : 'none'})`);
  }
  return src;
}

/** Source vectors [n, D] for one target row: the source run's `hook` at the source positions. */
export function sourceVectors(ref: SourceRef, src: SourceRun, hook: string, targetRow: number, defaultAt: PatchSpec['at'], what: string): tf.Tensor {
  const t = src.cache.get(hook);
  if (!t) throw new InputError(`${what}: source "${ref.cache}" did not cache ${hook} (cache it with RunOptions.cache)`);
  const row = ref.row ?? targetRow;
  if (row < 0 || row >= src.rows.length) throw new InputError(`${what}: source row ${row} does not exist (source has ${src.rows.length} rows)`);
  const pos = resolveSelector(toSelector(ref.at ?? defaultAt), src.rows[row]).prompt;
  const T = t.shape[1] as number;
  return gatherRows(t, pos.map((p) => row * T + p));
}

export function compilePatch(spec: PatchSpec, ctx: CompileContext, tracker: Tracker): CompiledPart {
  const what = spec.label ?? 'patch';
  const sel = resolveRows(spec.at, ctx, spec.rows, what);
  if (sel.some((r) => r?.generated)) throw new InputError(`${what}: cannot patch generated tokens from a cache; select prompt positions`);
  const src = sourceOf(spec.source, ctx, what);
  const owned: tf.Tensor[] = [];
  const hooks: [string, HookFn][] = [];
  for (const { hook, layer } of targetHooks(spec, ctx, what)) {
    const srcHook = spec.source.hook ?? (spec.source.site && layer !== null ? `lm.blocks.${layer}.${spec.source.site}` : hook);
    // Values per row in the row's sorted target order; a single source vector is broadcast over the targets.
    const perRow: (tf.Tensor | null)[] = sel.map((r, b) => {
      if (!r || r.prompt.length === 0) return null;
      const v = tf.tidy(() => sourceVectors(spec.source, src, srcHook, b, spec.at, what));
      const n = v.shape[0] as number;
      if (n === r.prompt.length) return v;
      if (n === 1) {
        const t = tf.tidy(() => tf.tile(v, [r.prompt.length, 1]));
        v.dispose();
        return t;
      }
      v.dispose();
      throw new InputError(`${what}: row ${b} selects ${r.prompt.length} target positions but the source gives ${n} (image spans of donor and target must have the same length)`);
    });
    const present = perRow.filter((x): x is tf.Tensor => x !== null);
    if (present.length === 0) continue;
    const all = tf.keep(present.length === 1 ? present[0] : tf.concat(present, 0));
    if (present.length > 1) present.forEach((x) => x.dispose());
    owned.push(all);
    // Start index of each row's values inside `all`.
    const starts: number[] = [];
    let acc = 0;
    for (const r of sel) {
      starts.push(acc);
      acc += r && r.prompt.length ? r.prompt.length : 0;
    }
    hooks.push([
      hook,
      rowWriter(sel, ctx, tracker, (_value, _flat, local, offset) => {
        // Value indices for the positions inside this call (all of them in a prefill).
        const idx = local.flatMap((ps, b) => ps.map((t) => starts[b] + sel[b]!.prompt.indexOf(t + offset)));
        return idx.length === acc ? all : tf.gather(all, tf.tensor1d(idx, 'int32'));
      }),
    ]);
  }
  return { hooks, owned };
}
