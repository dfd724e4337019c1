// Intervention specs: plain JSON objects (serialisable, versioned with the experiment spec) that
// `compileInterventions` turns into the model's RunOptions (hooks + attention mask).
import type * as tf from '@tensorflow/tfjs-core';
import type { HookFn, AttnMaskFn } from '../models/hooks';
import type { RowGeometry, Selector } from './selectors';

/** Residual-stream sites of a decoder block (hook `lm.blocks.{l}.{site}`). */
export type Site = 'resid_pre' | 'resid_mid' | 'resid_post' | 'attn_out' | 'mlp_out';
export const SITES: readonly Site[] = ['resid_pre', 'resid_mid', 'resid_post', 'attn_out', 'mlp_out'];

/** Where a write happens: an explicit hook name, or decoder layers and a site (default resid_pre = "inject at layer l"). */
export interface HookTarget {
  hook?: string;
  layers?: number[];
  site?: Site;
}

/** States cached by another run (same or another model): `cache` names an entry of the compile context's `sources`. */
export interface SourceRef {
  cache: string;
  /** Source hook; default: the target hook (or layer l's `site`/`source.site`). */
  hook?: string;
  site?: Site;
  /** Source batch row; default: the target row. */
  row?: number;
  /** Source positions; default: the target selector resolved on the source prompt. */
  at?: Selector | string;
}

interface Common {
  /** Batch rows the intervention applies to (default: all). */
  rows?: number[];
  /** Free label for reports. */
  label?: string;
}

/** Write cached states (from another run or another model) at the chosen positions. */
export interface PatchSpec extends Common, HookTarget {
  kind: 'patch';
  at: Selector | string;
  source: SourceRef;
}

/** Hold positions at block `from`'s output through block `until`: inputs of blocks from+1..until = block from's output. */
export interface FreezeSpec extends Common {
  kind: 'freeze';
  from: number;
  until: number;
  at: Selector | string;
  /** Take block `from`'s output from a cached run instead of this run (start-at-layer runs). */
  source?: { cache: string; row?: number };
}

/** Block attention edges: queries at `to` may not attend to keys at `from`, in `layers` (optionally some heads). */
export interface KnockoutSpec extends Common {
  kind: 'knockout';
  layers: number[];
  heads?: number[];
  /** Key positions (where information comes from). */
  from: Selector | string;
  /** Query positions (where it would go). */
  to: Selector | string;
}

/** Replace with zeros or a mean vector. */
export interface AblateSpec extends Common, HookTarget {
  kind: 'ablate';
  at: Selector | string;
  mode: 'zero' | 'mean';
  /** The mean vector [D], or a cached run whose states at `source.at` are averaged; default: mean over `at` in this run. */
  mean?: number[] | SourceRef;
}

/** Add `scale * vector` at the chosen positions. */
export interface SteerSpec extends Common, HookTarget {
  kind: 'steer';
  at: Selector | string;
  vector: number[] | SourceRef;
  scale?: number;
}

export type InterventionSpec = PatchSpec | FreezeSpec | KnockoutSpec | AblateSpec | SteerSpec;
export const INTERVENTION_KINDS = ['patch', 'freeze', 'knockout', 'ablate', 'steer'] as const;

/** Cached states of a batch of prompts, addressable as a patch source. */
export interface SourceRun {
  /** Hook name → [B, T, D] (the run's padded batch). */
  cache: Map<string, tf.Tensor>;
  rows: RowGeometry[];
}

export interface CompileContext {
  /** Geometry of every batch row of the run being intervened on. */
  rows: RowGeometry[];
  numHeads: number;
  numLayers: number;
  sources?: Record<string, SourceRun>;
  /** Throw instead of warning when an intervention is a no-op. */
  strict?: boolean;
}

/** What one compiled intervention adds to a run. */
export interface CompiledPart {
  hooks: [string, HookFn][];
  attnMask?: AttnMaskFn;
  /** Tensors owned by the part (precomputed patch values), disposed with the compiled set. */
  owned: tf.Tensor[];
  /** Releases state the part keeps between hook calls. */
  cleanup?: () => void;
}
