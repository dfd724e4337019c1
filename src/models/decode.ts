// Greedy decoding with a KV cache, one loop for every caller: Model.generate after its prefill, and the
// experiments' scheduler after a prefill that starts at a layer (issue 13: the two loops were twins). Rows are
// left-padded; a row that produced EOS is padded with `padId` afterwards, as HF does.
import * as tf from '@tensorflow/tfjs-core';
import type { DecoderConfig } from './config';
import { disposeCache, type CrossLayers, type Decoder, type KVCache } from './decoder';
import type { RunContext } from './hooks';

/** What a decode step continues from; `kv` is replaced at each step (the previous cache disposed). */
export interface DecodeState {
  kv: KVCache;
  /** Attention mask rows, extended by one real token per step. */
  mask: number[][];
  /** M-RoPE position offset per row (Qwen2-VL), from the prefill. */
  delta?: number[];
  /** Cross-attention keys/values of a cross-attention family (mllama), computed once at prefill; owned by the caller. */
  cross?: CrossLayers;
}

export interface GreedyOptions {
  maxNewTokens: number;
  eos: ReadonlySet<number>;
  padId: number;
  /** Run context of the decode steps (their hooks fire with `ctx.step` = 1, 2, ...). */
  ctx: RunContext;
  /** Keep the logits that chose each token ([step][row]). */
  keepLogits?: boolean;
}

export interface GreedyOutput {
  tokens: number[][];
  stepLogits: Float32Array[][];
}

/** Index of the largest value (the first on ties, as greedy decoding picks). */
export function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/**
 * Decodes greedily from `first` (the prefill's last-position logits, [B·V] row-major): picks each row's token,
 * stops after `maxNewTokens` or when every row has produced EOS, else runs one decoder step at each row's next
 * position (the count of its real tokens, plus its M-RoPE offset) on the cached keys and values.
 */
export function greedyDecode(
  model: { decoder: Decoder; text: Pick<DecoderConfig, 'mropeSection'>; vocabSize: number },
  first: Float32Array,
  state: DecodeState,
  opts: GreedyOptions,
): GreedyOutput {
  const V = model.vocabSize;
  const B = state.mask.length;
  const tokens: number[][] = Array.from({ length: B }, () => []);
  const stepLogits: Float32Array[][] = [];
  const done = new Array<boolean>(B).fill(false);
  let last = first;
  for (let s = 0; s < opts.maxNewTokens; s++) {
    const next: number[] = [];
    const rowLogits: Float32Array[] = [];
    for (let b = 0; b < B; b++) {
      const row = last.subarray(b * V, (b + 1) * V);
      if (opts.keepLogits) rowLogits.push(Float32Array.from(row));
      const tok = done[b] ? opts.padId : argmax(row);
      next.push(tok);
      tokens[b].push(tok);
      if (opts.eos.has(tok)) done[b] = true;
    }
    if (opts.keepLogits) stepLogits.push(rowLogits);
    if (s === opts.maxNewTokens - 1 || done.every(Boolean)) break;
    const prev = state.kv;
    for (const r of state.mask) r.push(1);
    const positions = state.mask.map((r, b) => Int32Array.of(r.reduce((a, x) => a + x, 0) - 1 + (state.delta ? state.delta[b] : 0)));
    opts.ctx.step = s + 1;
    const step = tf.tidy(() => {
      const embeds = model.decoder.embed(next.map((t) => [t]));
      const pos = model.text.mropeSection ? [positions, positions, positions] : positions;
      const r = model.decoder.forward({ embeds, positions: pos, keyMask: state.mask, ctx: opts.ctx, cache: prev, wantCache: true, cross: state.cross });
      state.kv = r.cache!;
      return r.logits!.reshape([B, V]);
    });
    disposeCache(prev);
    last = step.dataSync() as Float32Array;
    step.dispose();
  }
  return { tokens, stepLogits };
}
