// Plain (un-intervened) greedy generation over many prompts, batched with left padding, with the
// answer decoded up to the end-of-sequence token.
import type { Model } from '../models/model';
import { batchesOf, makeBatch, type Batch } from './batch';
import type { PromptCase, PromptSource } from './source';

export interface Generation {
  tokens: number[];
  text: string;
  /** Logits [V] of the first generated token (the model's prediction after the prompt). */
  firstLogits: Float32Array;
}

export function eosSet(model: Model): Set<number> {
  const e = model.text.eosTokenId;
  return new Set(e == null ? [] : Array.isArray(e) ? e : [e]);
}

/** Tokens up to (not including) the first EOS. */
export function untilEos(tokens: readonly number[], eos: Set<number>): number[] {
  const i = tokens.findIndex((t) => eos.has(t));
  return i < 0 ? [...tokens] : tokens.slice(0, i);
}

export interface GreedyOptions {
  maxNewTokens: number;
  batchSize: number;
  signal?: AbortSignal;
  /** Called after each batch with the number of prompts done. */
  onDone?(n: number): void;
}

/** Greedy answers for every prompt, keyed by prompt id. */
export async function generateAll(model: Model, source: PromptSource, cases: readonly PromptCase[], opts: GreedyOptions): Promise<Map<string, Generation>> {
  const out = new Map<string, Generation>();
  const eos = eosSet(model);
  for (const group of batchesOf(cases, opts.batchSize)) {
    opts.signal?.throwIfAborted();
    let batch: Batch | null = null;
    try {
      batch = await makeBatch(model, source, group);
      const g = model.generate(batch.inputs, { maxNewTokens: opts.maxNewTokens, returnStepLogits: true });
      for (const t of g.cache.values()) t.dispose();
      group.forEach((c, b) => {
        const tokens = untilEos(g.newTokens[b], eos);
        out.set(c.id, { tokens, text: source.decode(tokens), firstLogits: g.stepLogits![0][b] });
      });
    } finally {
      batch?.dispose();
    }
    opts.onDone?.(group.length);
    await new Promise((r) => setImmediate(r));
  }
  return out;
}
