// Forward patching ("freezing", Cohen et al. 2024 §6): the selected positions stop updating from block
// `from` until block `until`: the inputs of blocks from+1..until at those positions are set to block
// `from`'s output, and they resume updating after block `until`.
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../errors';
import type { HookFn } from '../models/hooks';
import type { Tracker } from './guard';
import { sourceVectors } from './patch';
import type { CompileContext, CompiledPart, FreezeSpec } from './types';
import { flatIndex, gatherRows, localSelection, resolveRows, rowWriter } from './write';

export function compileFreeze(spec: FreezeSpec, ctx: CompileContext, tracker: Tracker): CompiledPart {
  const what = spec.label ?? `freeze ${spec.from}..${spec.until}`;
  const { from, until } = spec;
  if (!Number.isInteger(from) || from < 0 || from >= ctx.numLayers - 1)
    throw new InputError(`${what}: "from" must be a layer in 0..${ctx.numLayers - 2}, got ${from}`);
  if (!Number.isInteger(until) || until <= from || until >= ctx.numLayers)
    throw new InputError(`${what}: "until" must be a layer in ${from + 1}..${ctx.numLayers - 1}, got ${until}`);
  const sel = resolveRows(spec.at, ctx, spec.rows, what);
  if (sel.some((r) => r?.generated)) throw new InputError(`${what}: generated tokens cannot be frozen (they do not exist at block ${from})`);
  const captureHook = `lm.blocks.${from}.resid_post`;
  const hooks: [string, HookFn][] = [];
  const owned: tf.Tensor[] = [];
  // Block `from`'s output at the selected positions: from a cached clean run, or captured live in this forward.
  let frozen: tf.Tensor | null = null;
  // Row of `frozen` holding (batch row, absolute position), so a later call may cover any part of the selection.
  let frozenAt = new Map<string, number>();
  const index = (local: number[][], offset: number) => {
    const m = new Map<string, number>();
    local.forEach((ps, b) => ps.forEach((t) => m.set(`${b}:${t + offset}`, m.size)));
    return m;
  };
  if (spec.source) {
    const src = ctx.sources?.[spec.source.cache];
    if (!src) throw new InputError(`${what}: source cache "${spec.source.cache}" is not available`);
    const parts = sel.flatMap((r, b) =>
      r && r.prompt.length ? [tf.tidy(() => sourceVectors({ cache: spec.source!.cache, row: spec.source!.row }, src, captureHook, b, spec.at, what))] : [],
    );
    if (parts.length) {
      frozen = tf.keep(parts.length === 1 ? parts[0] : tf.concat(parts, 0));
      if (parts.length > 1) parts.forEach((p) => p.dispose());
      owned.push(frozen);
      frozenAt = index(sel.map((r) => r?.prompt ?? []), 0);
    }
  } else {
    hooks.push([
      captureHook,
      (value, ev) => {
        const T = value.shape[1] as number;
        const local = localSelection(sel, ctx, ev.offset, T);
        const flat = flatIndex(local, T);
        if (flat.length === 0) return;
        // Kept past this block's scope (streamed models run each block in its own tidy): later blocks read it.
        const next = tf.keep(gatherRows(value, flat));
        if (frozen && !spec.source) frozen.dispose();
        frozen = next;
        frozenAt = index(local, ev.offset);
      },
    ]);
  }
  for (let j = from + 1; j <= until; j++) {
    hooks.push([
      `lm.blocks.${j}.resid_pre`,
      rowWriter(sel, ctx, tracker, (_value, _flat, local, offset) => {
        const idx = local.flatMap((ps, b) => ps.map((t) => frozenAt.get(`${b}:${t + offset}`) ?? -1));
        if (!frozen || idx.includes(-1))
          throw new InputError(`${what}: block ${from}'s output was not captured for these positions (a run that starts after block ${from} needs "source")`);
        return idx.length === frozen.shape[0] && idx.every((v, i) => v === i) ? frozen : tf.gather(frozen, tf.tensor1d(idx, 'int32'));
      }),
    ]);
  }
  return {
    hooks,
    owned,
    cleanup: () => {
      if (frozen && !spec.source) frozen.dispose();
      frozen = null;
    },
  };
}
