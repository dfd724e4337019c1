// Hook points: one naming scheme for every model family, and the per-run context that caches, edits,
// masks and starts/stops a forward pass. A hook point is an identity the value passes through
// (TransformerLens style), so model code stays readable: `h = run.point('lm.blocks.3.resid_post', h)`.
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../errors';

/** One hook point a model exposes, with the axes of its value. */
export interface HookPointInfo {
  name: string;
  axes: string[];
  /** Part of the model the point belongs to. */
  part: 'vision' | 'projector' | 'lm';
  layer?: number;
}

export interface HookEvent {
  name: string;
  layer?: number;
  /** Generation step: 0 for the prefill forward, s>0 for the s-th decode step. */
  step: number;
  /** Position of index 0 along the sequence axis in absolute (cache) coordinates. */
  offset: number;
}

/**
 * Edits a hook's value: return a new tensor to replace it, or nothing to keep it.
 * Runs inside the forward's tidy scope: intermediate tensors are cleaned up automatically.
 */
export type HookFn = (value: tf.Tensor, ev: HookEvent) => tf.Tensor | void;

/**
 * Additive attention-score mask for one layer, broadcastable to [B, H, Tq, Tk] (0 keep, -Infinity block),
 * added to the causal/padding mask before softmax. Return null for "no extra mask at this layer".
 * Tq covers the query positions of this forward (offset `ev.offset`), Tk all keys (cache + new).
 */
export type AttnMaskFn = (layer: number, ev: { step: number; offset: number; tq: number; tk: number }) => tf.Tensor | null;

export interface RunOptions {
  /** Hook names (or a predicate) whose values to keep; returned in `ForwardResult.cache` (caller disposes). */
  cache?: readonly string[] | ((name: string) => boolean);
  /** Edits keyed by hook name. Several for one point run in array order. */
  hooks?: Record<string, HookFn | HookFn[]>;
  /** Extra additive attention masks (attention knockout). */
  attnMask?: AttnMaskFn;
  /**
   * Extra additive masks for cross-attention layers (mllama), broadcastable to [B, H, Tq, vision tokens]: knockout of
   * text → tile/patch edges. Vision tokens are images × tiles × (patches + 1) per row, in that order.
   */
  crossAttnMask?: AttnMaskFn;
  /**
   * Start the LM at decoder block `startLayer` with `startResid` [B,T,D] as the input of that block
   * (= HF hidden_states[startLayer]); embedding and vision are skipped.
   */
  startLayer?: number;
  startResid?: tf.Tensor;
  /** Stop after decoder block `stopLayer - 1` (exclusive bound); no final norm or logits are computed. */
  stopLayer?: number;
  /**
   * 'last': the head runs on the last position only ([B, 1, V], hook offset T - 1), for callers that read only
   * the next token (a prefill, a sweep row). The head over every position is 19 % of a text forward at issue
   * 20's mid shapes (vocab 32k; docs/performance.md). Ignored when a hook or the cache asks for `lm.logits`.
   */
  logits?: 'all' | 'last';
}

/** The live state of one forward run: which points to cache, which to edit. */
export class RunContext {
  readonly cached = new Map<string, tf.Tensor>();
  private readonly want: (name: string) => boolean;
  private readonly hooks: Map<string, HookFn[]>;
  readonly touched = new Set<string>();
  step = 0;

  constructor(readonly opts: RunOptions = {}) {
    const c = opts.cache;
    this.want = c == null ? () => false : typeof c === 'function' ? c : ((set) => (n: string) => set.has(n))(new Set(c));
    this.hooks = new Map();
    for (const [k, v] of Object.entries(opts.hooks ?? {})) this.hooks.set(k, Array.isArray(v) ? v : [v]);
  }

  /** Whether anything is listening at `name` (lets models skip computing optional values such as patterns). */
  wants(name: string): boolean {
    return this.hooks.has(name) || this.want(name);
  }

  /** Passes `value` through the hook point `name`: applies edits, then caches (tf.keep) if requested. */
  point(name: string, value: tf.Tensor, offset = 0, layer?: number): tf.Tensor {
    let v = value;
    const fns = this.hooks.get(name);
    if (fns) {
      this.touched.add(name);
      for (const fn of fns) {
        const out = fn(v, { name, layer, step: this.step, offset });
        if (out != null) {
          if (!arraysEqual(out.shape, v.shape))
            throw new InputError(`hook ${name} returned shape [${out.shape}] but the value has shape [${v.shape}]`);
          v = out;
        }
      }
    }
    if (this.want(name)) {
      const prev = this.cached.get(name);
      // Decode steps append along the sequence axis so a cache covers prompt + generated tokens.
      const kept = prev && this.step > 0 && v.rank >= 2 ? tf.concat([prev, v], v.rank === 4 ? 2 : 1) : v;
      if (prev && kept !== prev) prev.dispose();
      this.cached.set(name, tf.keep(kept.clone()));
    }
    return v;
  }

  attnMask(layer: number, tq: number, tk: number, offset: number): tf.Tensor | null {
    return this.opts.attnMask ? this.opts.attnMask(layer, { step: this.step, offset, tq, tk }) : null;
  }

  /** Names of hooks given to the run that the model never reached: a silent no-op guard. */
  unusedHooks(): string[] {
    return [...this.hooks.keys()].filter((k) => !this.touched.has(k));
  }
}

function arraysEqual(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Hook names of a decoder stack, in execution order. */
export function decoderHookPoints(prefix: string, part: HookPointInfo['part'], layers: number, withPattern: boolean): HookPointInfo[] {
  const out: HookPointInfo[] = [];
  for (let i = 0; i < layers; i++) {
    const b = `${prefix}.blocks.${i}`;
    out.push({ name: `${b}.resid_pre`, axes: ['batch', 'pos', 'd_model'], part, layer: i });
    if (withPattern) out.push({ name: `${b}.attn.pattern`, axes: ['batch', 'head', 'query_pos', 'key_pos'], part, layer: i });
    out.push({ name: `${b}.attn_out`, axes: ['batch', 'pos', 'd_model'], part, layer: i });
    out.push({ name: `${b}.resid_mid`, axes: ['batch', 'pos', 'd_model'], part, layer: i });
    out.push({ name: `${b}.mlp_out`, axes: ['batch', 'pos', 'd_model'], part, layer: i });
    out.push({ name: `${b}.resid_post`, axes: ['batch', 'pos', 'd_model'], part, layer: i });
  }
  return out;
}
