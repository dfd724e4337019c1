// Clean (un-intervened) states of a batch of prompts, cached once for a sweep: every block's input, the
// final-norm output, the last-position logits and (1-D RoPE families) every layer's keys and values, so
// an intervened run can start at its layer and at its first affected position.
import * as tf from '@tensorflow/tfjs-core';
import type { SourceRun } from '../interventions/types';
import { disposeCache, positionsFromMask, type KVCache } from '../models/decoder';
import { RunContext } from '../models/hooks';
import type { Model } from '../models/model';
import { batchesOf, makeBatch, type Batch } from './batch';
import type { PromptCase, PromptSource } from './source';

export interface CleanState {
  batch: Batch;
  /** resid[l] = input of block l [B, T, D] (l = 0..L-1); resid[L] = raw output of the last block. */
  resid: tf.Tensor[];
  /** The same states as a patch source (hooks lm.embed, lm.blocks.{l}.resid_pre / resid_post, lm.final_norm). */
  source: SourceRun;
  /** Logits [V] at the last prompt position, per row. */
  lastLogits: Float32Array[];
  /** Keys and values of every layer (after RoPE), [B, KV, T, hd]; null for M-RoPE families (no start-at-position). */
  kv: KVCache | null;
  /** 1-D RoPE positions of every row (null with M-RoPE). */
  positions: Int32Array[] | null;
  dispose(): void;
}

export function residHooks(numLayers: number): string[] {
  return [...Array.from({ length: numLayers }, (_, l) => `lm.blocks.${l}.resid_pre`), `lm.blocks.${numLayers - 1}.resid_post`, 'lm.final_norm'];
}

/** The clean state a patch source belongs to (its keys/values let a run reuse the donor's prefix). */
const OWNER = new WeakMap<SourceRun, CleanState>();
export function cleanStateOf(src: SourceRun): CleanState | undefined {
  return OWNER.get(src);
}

export function lastRows(logits: tf.Tensor): Float32Array[] {
  const [B, T, V] = logits.shape as number[];
  const t = tf.tidy(() => logits.slice([0, T - 1, 0], [B, 1, V]).reshape([B, V]));
  const d = t.dataSync() as Float32Array;
  t.dispose();
  return Array.from({ length: B }, (_, b) => d.slice(b * V, (b + 1) * V));
}

/** Runs the batch once: the embedding (vision tower included) through the model, the blocks through its decoder with keys/values kept. */
export function cleanState(model: Model, batch: Batch): CleanState {
  const L = model.numLayers;
  const names = residHooks(L);
  const withKV = model.canResume;
  let cached: Map<string, tf.Tensor>;
  let lastLogits: Float32Array[];
  let kv: KVCache | null = null;
  let positions: Int32Array[] | null = null;
  if (withKV) {
    const e = model.forward(batch.inputs, { cache: ['lm.embed'], stopLayer: 0 });
    e.hidden.dispose();
    const embed = e.cache.get('lm.embed')!;
    const mask = batch.inputs.attentionMask ?? batch.inputs.inputIds.map((r) => r.map(() => 1));
    positions = positionsFromMask(mask);
    const ctx = new RunContext({ cache: names, startLayer: 0, startResid: embed, logits: 'last' });
    const logits = tf.tidy(() => {
      const r = model.resume({ embeds: embed, positions: positions!, keyMask: mask, ctx, wantCache: true });
      kv = r.cache!;
      return r.logits!;
    });
    lastLogits = lastRows(logits);
    logits.dispose();
    cached = ctx.cached;
    cached.set('lm.embed', embed);
  } else {
    const out = model.forward(batch.inputs, { cache: names, logits: 'last' });
    lastLogits = lastRows(out.logits!);
    out.logits!.dispose();
    out.hidden.dispose();
    cached = out.cache;
    cached.set('lm.embed', cached.get('lm.blocks.0.resid_pre')!);
  }
  const resid = [...Array.from({ length: L }, (_, l) => cached.get(`lm.blocks.${l}.resid_pre`)!), cached.get(`lm.blocks.${L - 1}.resid_post`)!];
  const finalNorm = cached.get('lm.final_norm')!;
  const embed = cached.get('lm.embed')!;
  const cache = new Map<string, tf.Tensor>();
  cache.set('lm.embed', resid[0]);
  for (let l = 0; l < L; l++) {
    cache.set(`lm.blocks.${l}.resid_pre`, resid[l]);
    cache.set(`lm.blocks.${l}.resid_post`, resid[l + 1]);
  }
  cache.set('lm.final_norm', finalNorm);
  const state: CleanState = {
    batch,
    resid,
    source: { cache, rows: batch.rows },
    lastLogits,
    kv,
    positions,
    dispose: () => {
      tf.dispose([...new Set([...resid, finalNorm, embed])]);
      disposeCache(kv ?? undefined);
    },
  };
  OWNER.set(state.source, state);
  return state;
}

/** Clean states of many prompts (batched by length), and where each prompt sits. */
export interface CleanSet {
  where: Map<string, { clean: CleanState; row: number }>;
  dispose(): void;
}

export async function cleanStates(model: Model, source: PromptSource, cases: readonly PromptCase[], batchSize: number): Promise<CleanSet> {
  const where = new Map<string, { clean: CleanState; row: number }>();
  const states: CleanState[] = [];
  try {
    for (const group of batchesOf(cases, batchSize)) {
      const batch = await makeBatch(model, source, group);
      const clean = cleanState(model, batch);
      const dispose = clean.dispose;
      clean.dispose = () => {
        dispose();
        batch.dispose();
      };
      states.push(clean);
      group.forEach((c, row) => where.set(c.id, { clean, row }));
    }
  } catch (e) {
    states.forEach((s) => s.dispose());
    throw e;
  }
  return { where, dispose: () => states.forEach((s) => s.dispose()) };
}
