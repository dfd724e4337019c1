// Attention knockout (Geva et al. 2023): queries at `to` may not attend to keys at `from` in the chosen
// layers (optionally heads). Compiled into the additive attention mask (MASK_NEG, finite on purpose),
// added to the model's causal + padding mask, so it is correct with left padding and at decode steps
// (queries offset..offset+tq-1 against all tk keys). The PopVQA helper silently did nothing when a
// padding mask existed; here the guard counts the edges that were actually blocked.
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../errors';
import { MASK_NEG } from '../models/decoder';
import type { AttnMaskFn } from '../models/hooks';
import type { Tracker } from './guard';
import type { RowPositions } from './selectors';
import type { CompileContext, CompiledPart, KnockoutSpec } from './types';
import { resolveRows } from './write';

function selectedAt(r: RowPositions, pos: number, promptLength: number, promptSet: Set<number>): boolean {
  if (pos < promptLength) return promptSet.has(pos);
  if (!r.generated) return false;
  const g = pos - promptLength;
  return g >= r.generated[0] && g < r.generated[1];
}

export function compileKnockout(spec: KnockoutSpec, ctx: CompileContext, tracker: Tracker): CompiledPart {
  const what = spec.label ?? 'knockout';
  if (!Array.isArray(spec.layers) || spec.layers.length === 0) throw new InputError(`${what}: "layers" must be a non-empty list`);
  for (const l of spec.layers)
    if (!Number.isInteger(l) || l < 0 || l >= ctx.numLayers) throw new InputError(`${what}: layer ${l} is outside the model's ${ctx.numLayers} layers`);
  for (const h of spec.heads ?? [])
    if (!Number.isInteger(h) || h < 0 || h >= ctx.numHeads) throw new InputError(`${what}: head ${h} is outside the model's ${ctx.numHeads} heads`);
  const layers = new Set(spec.layers);
  const keys = resolveRows(spec.from, ctx, spec.rows, `${what} (from)`);
  const queries = resolveRows(spec.to, ctx, spec.rows, `${what} (to)`);
  const keySets = keys.map((r) => new Set(r?.prompt ?? []));
  const querySets = queries.map((r) => new Set(r?.prompt ?? []));
  const H = ctx.numHeads;
  const heads = spec.heads && spec.heads.length ? spec.heads : null;
  const attnMask: AttnMaskFn = (layer, ev) => {
    if (!layers.has(layer)) return null;
    const { offset, tq, tk } = ev;
    const B = ctx.rows.length;
    const Hm = heads ? H : 1;
    const m = new Float32Array(B * Hm * tq * tk);
    let blocked = 0;
    for (let b = 0; b < B; b++) {
      const q = queries[b];
      const k = keys[b];
      if (!q || !k) continue;
      const g = ctx.rows[b];
      const pad = g.offset;
      for (let i = 0; i < tq; i++) {
        const qAbs = offset + i;
        if (!selectedAt(q, qAbs, g.promptLength, querySets[b])) continue;
        for (let j = 0; j < tk; j++) {
          if (!selectedAt(k, j, g.promptLength, keySets[b])) continue;
          // Only edges the causal/padding mask leaves open count as blocked.
          if (j <= qAbs && j >= pad) blocked++;
          for (let h = 0; h < Hm; h++) {
            if (heads && !heads.includes(h)) continue;
            m[((b * Hm + h) * tq + i) * tk + j] = MASK_NEG;
          }
        }
      }
    }
    if (blocked > 0) tracker.blocked(blocked * (heads ? heads.length : 1));
    return tf.tensor4d(m, [B, Hm, tq, tk]);
  };
  return { hooks: [], attnMask, owned: [] };
}
