// The model contract every family implements, and the parts they share: running the decoder under a
// RunContext, greedy generation with a KV cache (correct with left padding), hook-point listing.
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../errors';
import type { DecoderConfig } from './config';
import { Decoder, disposeCache, positionsFromMask, type CrossLayers, type DecoderOutput, type DecoderRun, type KVCache } from './decoder';
import { greedyDecode, type DecodeState } from './decode';
import { RunContext, type HookPointInfo, type RunOptions } from './hooks';
import type { ImagePrep, PrepAssets } from './image-prep';

export type ImageInput = 'residual' | 'cross-attention' | 'none';

export interface ModelInputs {
  /** Token ids [B][T], image tokens already expanded (one per image feature). */
  inputIds: number[][];
  /** 1 = real token, 0 = padding; defaults to all ones. */
  attentionMask?: number[][];
  /**
   * Preprocessed pixels: [N, C, H, W] (LLaVA), [N, crops, C, H, W] (LLaVA-NeXT), flattened patches (Qwen2-VL),
   * [N, C, H, W] zero-padded to the largest image (Pixtral, with `imageSizes`).
   */
  pixelValues?: tf.Tensor;
  /** (height, width) per image: the original size (LLaVA-NeXT), the processed size (Pixtral). */
  imageSizes?: [number, number][];
  /** Qwen2-VL (t, h, w) patch grid per image. */
  imageGridThw?: [number, number, number][];
  /** Explicit position ids: [B][T], or [3][B][T] for M-RoPE. Computed from the mask (and image grids) when absent. */
  positionIds?: number[][] | number[][][];
  /**
   * Projected image features [tokens, D] to use instead of running the vision tower (cached or patched); for
   * mllama the cross-attention states [B, images·tiles·patches, D].
   */
  imageFeatures?: tf.Tensor;
  /** Mllama: aspect-ratio id per image [B][images] and real-tile mask [B][images][tiles] (MllamaImageProcessor). */
  aspectRatioIds?: number[][];
  aspectRatioMask?: number[][][];
  /** Mllama: which tiles each token may attend to, [B][T][images][tiles]; built from the ids as MllamaProcessor does when absent. */
  crossAttentionMask?: number[][][][];
}

export interface ForwardOutput {
  /** [B, T, V]; absent when the run stopped early. */
  logits?: tf.Tensor;
  /** Raw output of the last block that ran [B, T, D]. */
  hidden: tf.Tensor;
  /** Hook values requested with `cache`, by name. The caller disposes them (or calls `dispose()`). */
  cache: Map<string, tf.Tensor>;
  /** Hooks given to the run that the model never reached (a silent no-op guard). */
  unusedHooks: string[];
  dispose(): void;
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** Hooks, caches and masks for the run. Hooks also fire at decode steps unless `hookDecodeSteps` is false. */
  run?: RunOptions;
  hookDecodeSteps?: boolean;
  /** Stop a row at its EOS (then pad it); defaults to the config's eos_token_id. Set null to never stop. */
  eosTokenId?: number | number[] | null;
  /** Keep the raw logits that chose each new token. */
  returnStepLogits?: boolean;
}

export interface GenerateOutput {
  /** New tokens per row (after EOS a row is padded with the pad/eos id, as HF does). */
  newTokens: number[][];
  /** stepLogits[s][b] = logits [V] that chose token s of row b. */
  stepLogits?: Float32Array[][];
  /** Hook values cached over prefill + decode steps. */
  cache: Map<string, tf.Tensor>;
  unusedHooks: string[];
}

/**
 * A run of the language model's blocks on residuals the caller already has (`Model.resume`): `ctx` carries the
 * start layer (`startLayer`, `startResid`), hooks and caches; `cache` the keys/values of earlier positions (a
 * clean run's prefix); `positions` the 1-D positions of the new tokens; `keyMask` covers cache + new tokens.
 */
export type ResumeRun = Omit<DecoderRun, 'cross' | 'positions'> & { positions: Int32Array[] };

export interface Model {
  readonly family: string;
  readonly kind: 'vlm' | 'lm';
  /**
   * How images reach the language model: 'residual' = image features are scattered into the residual stream at
   * image-token positions (LLaVA, NeXT, Qwen2-VL, Pixtral), so position-based interventions on image tokens
   * apply; 'cross-attention' = text tokens read image states through gated cross-attention layers
   * (Llama-3.2-Vision), so there are no image positions; 'none' = a text-only LM. Experiments branch on this,
   * never on the family name.
   */
  readonly imageInput: ImageInput;
  readonly text: DecoderConfig;
  readonly decoder: Decoder;
  readonly numLayers: number;
  readonly dModel: number;
  readonly vocabSize: number;
  /** LLaVA-style image placeholder token, when the model takes images. */
  readonly imageTokenIndex?: number;
  /** Every hook point this model exposes, in execution order. */
  hookPoints(): HookPointInfo[];
  forward(inputs: ModelInputs, opts?: RunOptions): ForwardOutput;
  generate(inputs: ModelInputs, opts: GenerateOptions): GenerateOutput;
  /**
   * Whether `resume` applies: 1-D positions (not M-RoPE's three streams) and images, if any, already in the
   * residual stream (not read through cross-attention layers, which a resumed run would skip).
   */
  readonly canResume: boolean;
  /**
   * Runs the blocks from a given residual and key/value prefix (ResumeRun), for sweeps that restart a clean
   * run part-way (experiments/clean-state.ts, scheduler.ts). Experiments resume through this, never through
   * `decoder` (issue 13); it throws an InputError when `canResume` is false.
   */
  resume(run: ResumeRun): DecoderOutput;
  /** Logit lens: the final norm (unless `alreadyNormed`) and the LM head applied to residuals [.., D]. */
  unembed(resid: tf.Tensor, alreadyNormed?: boolean): tf.Tensor;
  /**
   * The prompt template (src/io/prompt/templates.ts) when the checkpoint's folder names none: the PopVQA
   * authors' rendering for the family (github ido-co/vlm-modality-gap setup.py), 'plain' for a text LM.
   */
  readonly defaultTemplate: string;
  /** How this model prepares an image (processor, token count, layout); null when it takes no image tokens. */
  imagePrep(assets: PrepAssets): ImagePrep | null;
  dispose(): void;
}

export interface Embedded {
  embeds: tf.Tensor;
  positions: Int32Array[] | Int32Array[][];
  /** Offset added to decode positions per row (Qwen2-VL rope_deltas); 0 for 1-D RoPE models. */
  decodeDelta?: number[];
  /** Cross-attention layers' run state (mllama); kept over a generation's decode steps, disposed after the run. */
  cross?: CrossLayers;
}

function validateIds(inputs: ModelInputs, vocab: number): number[][] {
  // `vocab` counts embedding rows: mllama's <|image|> id equals vocab_size (an extra row the head never predicts).
  const ids = inputs.inputIds;
  if (!Array.isArray(ids) || ids.length === 0 || !Array.isArray(ids[0]) || ids[0].length === 0)
    throw new InputError('inputIds must be a non-empty [batch][tokens] array');
  const T = ids[0].length;
  for (const [b, row] of ids.entries()) {
    if (row.length !== T) throw new InputError(`inputIds row ${b} has ${row.length} tokens, row 0 has ${T}: pad rows to one length`);
    for (const id of row)
      if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new InputError(`inputIds row ${b} has token id ${id} outside the vocabulary [0, ${vocab})`);
  }
  const mask = inputs.attentionMask;
  if (mask && (mask.length !== ids.length || mask.some((r) => r.length !== T)))
    throw new InputError('attentionMask must have the same [batch][tokens] shape as inputIds');
  return ids;
}

export abstract class ModelBase implements Model {
  abstract readonly family: string;
  abstract readonly kind: 'vlm' | 'lm';
  readonly imageTokenIndex?: number;
  /** Adapter-style VLMs put image features in the residual stream; cross-attention families override. */
  get imageInput(): ImageInput {
    return this.kind === 'vlm' ? 'residual' : 'none';
  }

  constructor(
    readonly text: DecoderConfig,
    readonly decoder: Decoder,
  ) {}

  get numLayers(): number {
    return this.text.numLayers;
  }
  get dModel(): number {
    return this.text.hiddenSize;
  }
  get vocabSize(): number {
    return this.text.vocabSize;
  }
  /** Token ids the embedding accepts (more than the head predicts when special rows are appended). */
  protected get inputVocabSize(): number {
    return this.vocabSize;
  }

  abstract hookPoints(): HookPointInfo[];
  abstract dispose(): void;
  /** Token + image embeddings [B, T, D] and position ids, with hooks on the way. */
  protected abstract embedInputs(inputs: ModelInputs, mask: number[][], ctx: RunContext): Embedded;

  protected maskOf(inputs: ModelInputs): number[][] {
    return inputs.attentionMask ?? inputs.inputIds.map((r) => r.map(() => 1));
  }

  forward(inputs: ModelInputs, opts: RunOptions = {}): ForwardOutput {
    validateIds(inputs, this.inputVocabSize);
    const ctx = new RunContext(opts);
    const mask = this.maskOf(inputs);
    let cross: CrossLayers | undefined;
    try {
      const out = tf.tidy(() => {
        const skipEmbed = opts.startResid != null;
        const e = skipEmbed ? this.positionsOnly(inputs, mask, ctx) : this.embedInputs(inputs, mask, ctx);
        cross = e.cross;
        const r = this.decoder.forward({ embeds: e.embeds, positions: e.positions, keyMask: mask, ctx, cross });
        return r.logits ? { hidden: r.hidden, logits: r.logits } : { hidden: r.hidden };
      }) as { hidden: tf.Tensor; logits?: tf.Tensor };
      const cache = ctx.cached;
      return {
        ...out,
        cache,
        unusedHooks: ctx.unusedHooks(),
        dispose() {
          tf.dispose([out.hidden, ...(out.logits ? [out.logits] : []), ...cache.values()]);
        },
      };
    } catch (e) {
      tf.dispose([...ctx.cached.values()]);
      throw e;
    } finally {
      (cross as CrossLayers | undefined)?.dispose();
    }
  }

  get canResume(): boolean {
    return !this.text.mropeSection && this.imageInput !== 'cross-attention';
  }

  resume(run: ResumeRun): DecoderOutput {
    if (!this.canResume)
      throw new InputError(
        `model family "${this.family}" cannot resume a run from a layer: ` +
          (this.text.mropeSection ? 'its positions are three M-RoPE streams' : 'its images enter through cross-attention layers') +
          '; run model.forward with startLayer/startResid instead',
      );
    return this.decoder.forward(run);
  }

  unembed(resid: tf.Tensor, alreadyNormed = false): tf.Tensor {
    return this.decoder.unembed(resid, alreadyNormed);
  }

  get defaultTemplate(): string {
    return 'plain';
  }

  imagePrep(_assets: PrepAssets): ImagePrep | null {
    return null;
  }

  /** Positions without embedding (start-at-layer runs); families with special positions override. */
  protected positionsOnly(inputs: ModelInputs, mask: number[][], _ctx: RunContext): Embedded {
    const positions = inputs.positionIds
      ? toInt32(inputs.positionIds)
      : positionsFromMask(mask);
    return { embeds: tf.zeros([0]), positions };
  }

  generate(inputs: ModelInputs, opts: GenerateOptions): GenerateOutput {
    const ids = validateIds(inputs, this.inputVocabSize);
    const mask = this.maskOf(inputs).map((r) => [...r]);
    const B = ids.length;
    const T = ids[0].length;
    if (B > 1 && mask.some((r) => r[T - 1] === 0))
      throw new InputError('batched generation needs left padding (every row must end with a real token)');
    const eosRaw = opts.eosTokenId === undefined ? this.text.eosTokenId : opts.eosTokenId;
    const eos = new Set(eosRaw == null ? [] : Array.isArray(eosRaw) ? eosRaw : [eosRaw]);
    const padId = this.text.padTokenId ?? [...eos][0] ?? 0;
    const run = opts.run ?? {};
    // Greedy decoding reads the prefill's last position only.
    const ctx = new RunContext({ ...run, logits: 'last' });
    const decodeCtx = opts.hookDecodeSteps === false ? new RunContext({ attnMask: run.attnMask, crossAttnMask: run.crossAttnMask }) : ctx;
    let state: DecodeState | undefined;
    let kv: KVCache | undefined;
    let cross: CrossLayers | undefined;
    let out: { tokens: number[][]; stepLogits: Float32Array[][] };
    try {
      // Prefill (cross-attention keys/values, where the family has them, are computed here once for all steps)
      let delta: number[] | undefined;
      const first = tf.tidy(() => {
        const e = this.embedInputs(inputs, mask, ctx);
        delta = e.decodeDelta;
        cross = e.cross;
        const r = this.decoder.forward({ embeds: e.embeds, positions: e.positions, keyMask: mask, ctx, wantCache: true, cross });
        kv = r.cache;
        const t = r.logits!.shape[1] as number;
        return r.logits!.slice([0, t - 1, 0], [B, 1, this.vocabSize]).reshape([B, this.vocabSize]);
      });
      state = { kv: kv!, mask, delta, cross };
      const last = first.dataSync() as Float32Array;
      first.dispose();
      out = greedyDecode(this, last, state, { maxNewTokens: opts.maxNewTokens, eos, padId, ctx: decodeCtx, keepLogits: opts.returnStepLogits });
    } catch (e) {
      tf.dispose([...ctx.cached.values()]);
      throw e;
    } finally {
      disposeCache(state ? state.kv : kv);
      (cross as CrossLayers | undefined)?.dispose();
      if (decodeCtx !== ctx) tf.dispose([...decodeCtx.cached.values()]);
    }
    return { newTokens: out.tokens, stepLogits: opts.returnStepLogits ? out.stepLogits : undefined, cache: ctx.cached, unusedHooks: ctx.unusedHooks() };
  }
}

export function toInt32(p: number[][] | number[][][]): Int32Array[] | Int32Array[][] {
  return Array.isArray(p[0][0])
    ? (p as number[][][]).map((s) => s.map((r) => Int32Array.from(r)))
    : (p as number[][]).map((r) => Int32Array.from(r));
}
