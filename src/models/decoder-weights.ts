// The decoder's weights: which HF tensors a Llama / Mistral / Qwen2 decoder reads, their shapes, and how they
// are held: resident on the device, or (over the memory budget, ./memory-plan.ts) kept compact on the host and
// uploaded layer by layer (./streaming.ts). One table of layer tensors (LAYER_PARTS) serves the expected
// names, the resident load and the streamed load, so the three cannot disagree. The maths is ./decoder.ts.
import * as tf from '@tensorflow/tfjs-core';
import type { DecoderConfig } from './config';
import type { MemoryPlan } from './memory-plan';
import {
  hostRowsTransposed,
  memoryPlanOf,
  readHost,
  residentProvider,
  streamedProvider,
  uploadHost,
  type HostTensor,
  type WeightProvider,
} from './streaming';
import { checkWeights, readTensor, type Expected } from './weights';
import type { WeightSource } from './weights';

export interface DecoderLayerWeights {
  inputNorm: tf.Tensor;
  /**
   * [D, H * hd], [D, KV * hd], [D, KV * hd]: three products, not one fused product and a split, which is a
   * strided copy once B > 1 (layers.ts gatedMlp; issue 20).
   */
  q: tf.Tensor;
  k: tf.Tensor;
  v: tf.Tensor;
  qBias: tf.Tensor | null;
  kBias: tf.Tensor | null;
  vBias: tf.Tensor | null;
  /** [H * hd, D] */
  o: tf.Tensor;
  postNorm: tf.Tensor;
  /** [D, I] each (two products beat one fused product and a split: layers.ts gatedMlp). */
  gate: tf.Tensor;
  up: tf.Tensor;
  /** [I, D] */
  down: tf.Tensor;
}

export interface DecoderWeights {
  /** [V, D] on the device; null when streaming (rows are then gathered from `embedHost`). */
  embed: tf.Tensor | null;
  embedHost: HostTensor | null;
  /** Layer weights, asked for layer by layer: resident tensors, or uploaded per use when streaming. */
  layers: WeightProvider<DecoderLayerWeights>;
  norm: tf.Tensor;
  /** Head [D, V] as vocabulary-column chunks [D, V_c] (one chunk when resident; the transposed embedding when tied). */
  head: WeightProvider<tf.Tensor>;
  /** The memory plan the weights were loaded under (absent for in-memory sources). */
  memory?: MemoryPlan;
}

/** Loading options for decoders whose stack is not all self-attention layers, or whose embedding has extra rows. */
export interface DecoderLayout {
  /** Layer indices the family loads and runs itself (see CrossLayers); the decoder holds no weights for them. */
  crossLayers?: readonly number[];
  /** Rows of the embedding table when it differs from vocab_size (mllama: + 8 image/special rows). */
  embedRows?: number;
}

type LayerPart = keyof DecoderLayerWeights;

/**
 * Every tensor of a self-attention layer: its HF name under `layers.{i}.`, its stored shape, whether it is read
 * transposed to [in, out] (the products' layout), and whether it exists only with `qkv_bias` (Qwen2).
 */
const LAYER_PARTS: Record<LayerPart, { name: string; shape: (c: DecoderConfig) => number[]; transpose: boolean; qkvBias?: true }> = {
  inputNorm: { name: 'input_layernorm.weight', shape: (c) => [c.hiddenSize], transpose: false },
  q: { name: 'self_attn.q_proj.weight', shape: (c) => [c.numHeads * c.headDim, c.hiddenSize], transpose: true },
  k: { name: 'self_attn.k_proj.weight', shape: (c) => [c.numKvHeads * c.headDim, c.hiddenSize], transpose: true },
  v: { name: 'self_attn.v_proj.weight', shape: (c) => [c.numKvHeads * c.headDim, c.hiddenSize], transpose: true },
  o: { name: 'self_attn.o_proj.weight', shape: (c) => [c.hiddenSize, c.numHeads * c.headDim], transpose: true },
  postNorm: { name: 'post_attention_layernorm.weight', shape: (c) => [c.hiddenSize], transpose: false },
  gate: { name: 'mlp.gate_proj.weight', shape: (c) => [c.intermediateSize, c.hiddenSize], transpose: true },
  up: { name: 'mlp.up_proj.weight', shape: (c) => [c.intermediateSize, c.hiddenSize], transpose: true },
  down: { name: 'mlp.down_proj.weight', shape: (c) => [c.hiddenSize, c.intermediateSize], transpose: true },
  qBias: { name: 'self_attn.q_proj.bias', shape: (c) => [c.numHeads * c.headDim], transpose: false, qkvBias: true },
  kBias: { name: 'self_attn.k_proj.bias', shape: (c) => [c.numKvHeads * c.headDim], transpose: false, qkvBias: true },
  vBias: { name: 'self_attn.v_proj.bias', shape: (c) => [c.numKvHeads * c.headDim], transpose: false, qkvBias: true },
};
const PARTS = Object.keys(LAYER_PARTS) as LayerPart[];

/** The self-attention layers the decoder holds weights for (the family runs `crossLayers` itself). */
function ownLayers(cfg: DecoderConfig, layout: DecoderLayout): number[] {
  return Array.from({ length: cfg.numLayers }, (_, i) => i).filter((i) => !layout.crossLayers?.includes(i));
}

/** Layer `i`'s tensors read by `read` (absent bias parts are null). */
function readLayer<T>(cfg: DecoderConfig, prefix: string, i: number, read: (name: string, transpose: boolean) => T): Record<LayerPart, T | null> {
  const p = `${prefix}layers.${i}.`;
  return Object.fromEntries(PARTS.map((k) => [k, LAYER_PARTS[k].qkvBias && !cfg.qkvBias ? null : read(p + LAYER_PARTS[k].name, LAYER_PARTS[k].transpose)])) as Record<LayerPart, T | null>;
}

/** HF tensor names and shapes the decoder needs, under `prefix` ("model." or "language_model.model."). */
export function decoderExpected(cfg: DecoderConfig, prefix: string, headName: string, layout: DecoderLayout = {}): Expected[] {
  const { hiddenSize: D, vocabSize: V } = cfg;
  const out: Expected[] = [{ name: `${prefix}embed_tokens.weight`, shape: [layout.embedRows ?? V, D] }];
  for (const i of ownLayers(cfg, layout))
    for (const k of PARTS) if (!LAYER_PARTS[k].qkvBias || cfg.qkvBias) out.push({ name: `${prefix}layers.${i}.${LAYER_PARTS[k].name}`, shape: LAYER_PARTS[k].shape(cfg) });
  out.push({ name: `${prefix}norm.weight`, shape: [D] });
  if (!cfg.tieWordEmbeddings) out.push({ name: headName, shape: [V, D] });
  return out;
}

/** Buffers some exporters save next to the weights; not parameters, never read. */
const DECODER_EXTRA = [/\.rotary_emb\.inv_freq$/];

export function loadDecoderWeights(src: WeightSource, cfg: DecoderConfig, prefix: string, headName: string, layout: DecoderLayout = {}): DecoderWeights {
  // Both ways: a tensor under the decoder's own names that the config does not explain (a 4th layer when the
  // config says 3) is reported with the missing ones, in one error (issue 13). Layers the family runs itself
  // (cross-attention layers) are checked by the family.
  const own = (layout.crossLayers ?? []).map((i) => new RegExp(`^${prefix.replace(/\./g, '\\.')}layers\\.${i}\\.`));
  checkWeights(src, decoderExpected(cfg, prefix, headName, layout), [`${prefix}layers.`, `${prefix}embed_tokens.`, `${prefix}norm.`], [...DECODER_EXTRA, ...own]);
  const memory = memoryPlanOf(src);
  if (memory?.stream) return loadStreamedDecoderWeights(src, cfg, prefix, headName, memory, layout);
  // Sparse where the family runs its own layers (the providers never acquire those indices).
  const layers: DecoderLayerWeights[] = new Array(cfg.numLayers);
  for (const i of ownLayers(cfg, layout)) layers[i] = readLayer(cfg, prefix, i, (name, t) => readTensor(src, name, t)) as DecoderLayerWeights;
  const embed = readTensor(src, `${prefix}embed_tokens.weight`);
  const lmHead = cfg.tieWordEmbeddings ? tf.transpose(embed) : readTensor(src, headName, true);
  return {
    embed,
    embedHost: null,
    layers: residentProvider(layers, freeLayer),
    norm: readTensor(src, `${prefix}norm.weight`),
    head: residentProvider([lmHead], (t) => t.dispose()),
    memory,
  };
}

function freeLayer(l: DecoderLayerWeights): void {
  tf.dispose(Object.values(l).filter((t): t is tf.Tensor => t !== null));
}

/**
 * Streaming: every layer is kept in stored precision on the host, already transposed like the resident tensors
 * (so an upload is one dtype conversion), the embedding table stays on the host, and the head is cut into
 * vocabulary chunks no bigger than a layer. Values are identical to the resident path.
 */
function loadStreamedDecoderWeights(src: WeightSource, cfg: DecoderConfig, prefix: string, headName: string, memory: MemoryPlan, layout: DecoderLayout): DecoderWeights {
  const host: Record<LayerPart, HostTensor | null>[] = new Array(cfg.numLayers);
  for (const i of ownLayers(cfg, layout)) host[i] = readLayer(cfg, prefix, i, (name, t) => readHost(src, name, t));
  const embedHost = readHost(src, `${prefix}embed_tokens.weight`);
  const headRows = cfg.tieWordEmbeddings ? embedHost : readHost(src, headName); // [V, D]
  const { vocabSize: V, hiddenSize: D } = cfg;
  const chunkCols = Math.max(1, Math.min(V, Math.floor(memory.unitBytes / (4 * D)) || V));
  const chunks: HostTensor[] = [];
  for (let v0 = 0; v0 < V; v0 += chunkCols) chunks.push(hostRowsTransposed(headRows, v0, Math.min(V, v0 + chunkCols)));
  const upLayer = (h: Record<LayerPart, HostTensor | null>): DecoderLayerWeights =>
    Object.fromEntries(PARTS.map((k) => { const t = h[k]; return [k, t ? uploadHost(t) : null]; })) as unknown as DecoderLayerWeights;
  return {
    embed: null,
    embedHost,
    layers: streamedProvider(host, upLayer, freeLayer),
    norm: readTensor(src, `${prefix}norm.weight`),
    head: streamedProvider(chunks, uploadHost, (t) => t.dispose()),
    memory,
  };
}

export function disposeDecoderWeights(w: DecoderWeights): void {
  w.layers.dispose();
  w.head.dispose();
  tf.dispose([w.norm, ...(w.embed ? [w.embed] : [])]);
}
