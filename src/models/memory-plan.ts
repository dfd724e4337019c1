// The memory plan: how much device memory a model may use, how its weights must be held (resident, or
// streamed unit by unit, see ./streaming.ts), and whether a forward's activations fit beside them. Decided
// at load from the checkpoint's tensor list, before any weight is read; errors say what to change.
import * as os from 'node:os';
import { CheckpointError, InputError } from '../errors';
import { engineConfig, parseBytes } from '../engine/config';

/** "100kB", "3.5GiB", "4e9" → bytes (parsed with the engine configuration, src/engine/config.ts). */
export { parseBytes };

/** wasm32 addresses 4 GiB; leave room for the allocator, kernels' scratch and fragmentation. */
export const WASM_DEFAULT_BUDGET = 3.5 * 2 ** 30;

/**
 * Device memory the model may use: the option, else HOPSCOPE_MEMORY_BUDGET, else a backend default
 * (wasm 3.5 GiB; cpu and tensorflow use host RAM: half of it; a GPU's memory cannot be queried from tfjs:
 * set HOPSCOPE_MEMORY_BUDGET to about 80% of it).
 */
export function resolveBudget(option: number | string | undefined, backend: string): number {
  if (option !== undefined) return parseBytes(option, 'memoryBudget option');
  const configured = engineConfig().memoryBudget;
  if (configured !== null) return configured;
  return backend === 'wasm' ? WASM_DEFAULT_BUDGET : os.totalmem() / 2;
}

export function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

/** Decoder sizes that drive activation memory. */
export interface TextDims {
  vocab: number;
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  layers: number;
}

/**
 * Estimated peak device bytes of a decoder forward over B rows of T new tokens attending to S keys: per layer
 * the residual, norms and hooks, q/k/v with their RoPE copies, the MLP and 3 copies of the attention scores;
 * logits (twice: head chunks and their concat) and, when generating, the KV cache. With `perLayerFreed`
 * (streaming) one layer's intermediates are alive at a time; otherwise the forward's tidy keeps all layers'.
 */
export function activationBytes(d: TextDims, B: number, T: number, S = T, perLayerFreed = false, withCache = false): number {
  const perLayer = T * (8 * d.hidden + 6 * (d.heads + 2 * d.kvHeads) * d.headDim + 3 * d.intermediate) + 3 * d.heads * T * S;
  const layers = perLayerFreed ? 1 : d.layers;
  const resid = (perLayerFreed ? 2 : d.layers) * T * d.hidden;
  const logits = 2 * T * d.vocab;
  const kv = withCache ? 2 * d.layers * d.kvHeads * d.headDim * S : 0;
  return 4 * B * (layers * perLayer + resid + logits + kv);
}

/** Prompt length the load-time check plans for (a LLaVA-1.5 prompt is ~600 tokens); longer runs are checked when they start. */
export const DEFAULT_PLANNED_TOKENS = 1024;

export interface TensorInfo {
  name: string;
  shape: readonly number[];
  /** Bytes as stored (compact). */
  bytes: number;
}

/** Which tensors stream, and as which unit: decoder layers, extra stacks a family registers, embedding, head. */
export interface StreamRules {
  /** Patterns whose first capture group numbers a unit (e.g. /^model\.layers\.(\d+)\./). */
  units: RegExp[];
  /** Embedding table name(s): held on the host, rows gathered per call. */
  embed: RegExp;
  /** Head: uploaded in vocab chunks no larger than the largest unit. */
  head: RegExp;
}

export const DEFAULT_STREAM_RULES: StreamRules = {
  units: [/^((?:language_model\.)?model\.layers\.\d+)\./],
  embed: /(?:^|\.)embed_tokens\.weight$/,
  head: /(?:^|\.)lm_head\.weight$/,
};

export interface MemoryPlan {
  budgetBytes: number;
  /** Whether weights stream layer by layer. */
  stream: boolean;
  /** Device bytes of weights that stay resident (everything when not streaming). */
  residentBytes: number;
  /** Largest unit uploaded at once (float32). */
  unitBytes: number;
  /** Host bytes held for streamed units (stored precision). */
  hostBytes: number;
  /** Tokens the activation estimate was made for. */
  plannedTokens: number;
  dims: TextDims;
  summary: string;
}

export interface PlanOptions {
  budgetBytes: number;
  dims: TextDims;
  rules?: StreamRules;
  /** 'auto' streams only when the resident model would not fit. */
  mode?: 'auto' | 'resident' | 'stream';
  plannedTokens?: number;
  /** Whether device memory is host RAM (wasm, cpu, tensorflow on CPU). */
  deviceIsHost?: boolean;
  hostFreeBytes?: number;
  hostTotalBytes?: number;
  where?: string;
}

/**
 * Decides resident vs streaming from the checkpoint's tensor sizes and checks, before anything is read,
 * that the chosen way fits both the device budget and host RAM. Throws CheckpointError saying what to change.
 */
export function planMemory(tensors: TensorInfo[], o: PlanOptions): MemoryPlan {
  const rules = o.rules ?? DEFAULT_STREAM_RULES;
  const where = o.where ?? 'checkpoint';
  const T = o.plannedTokens ?? DEFAULT_PLANNED_TOKENS;
  const budget = o.budgetBytes;
  let total = 0;
  let fixed = 0;
  let head = 0;
  let embedStored = 0;
  let headStored = 0;
  const units = new Map<string, { f32: number; stored: number }>();
  for (const t of tensors) {
    const f32 = 4 * t.shape.reduce((a, d) => a * d, 1);
    total += f32;
    const key = rules.units.map((r) => r.exec(t.name)?.[1]).find((k) => k !== undefined);
    if (key !== undefined) {
      const u = units.get(key) ?? { f32: 0, stored: 0 };
      u.f32 += f32;
      u.stored += t.bytes;
      units.set(key, u);
    } else if (rules.embed.test(t.name)) embedStored += t.bytes;
    else if (rules.head.test(t.name)) {
      head += f32;
      headStored += t.bytes;
    } else fixed += f32;
  }
  const layerUnit = Math.max(0, ...[...units.values()].map((u) => u.f32));
  // A tied head (no lm_head tensor) is the embedding transposed: a second copy, on the device when resident,
  // on the host when streaming.
  const tied = head === 0;
  const headF32 = tied ? 4 * o.dims.vocab * o.dims.hidden : head;
  // Head chunks are no bigger than a layer (and at least one vocabulary column).
  const unit = Math.max(layerUnit, Math.min(headF32, Math.max(layerUnit, 4 * o.dims.hidden)));
  const unitsStored = [...units.values()].reduce((a, u) => a + u.stored, 0);
  const hostStreamed = unitsStored + embedStored + (tied ? embedStored : headStored);
  const actResident = activationBytes(o.dims, 1, T, T, false);
  const actStream = activationBytes(o.dims, 1, T, T, true);
  const residentNeed = total + (tied ? headF32 : 0) + actResident;
  const streamNeed = fixed + unit + actStream;
  const mode = o.mode ?? 'auto';
  const stream = mode === 'stream' || (mode === 'auto' && residentNeed > budget);
  const dims = o.dims;
  const fmt = fmtBytes;
  if (stream && streamNeed > budget) {
    throw new CheckpointError(
      `${where}: does not fit the memory budget of ${fmt(budget)} even streamed layer by layer: ` +
        `resident weights (vision tower, projector, norms) ${fmt(fixed)} + largest layer ${fmt(unit)} + ` +
        `activations for ${T} tokens ~${fmt(actStream)} = ${fmt(streamNeed)}. ` +
        `Raise HOPSCOPE_MEMORY_BUDGET (or the memoryBudget option) if the device has more memory, ` +
        `plan for fewer tokens (plannedTokens), or use a GPU backend.`,
    );
  }
  if (!stream && mode === 'resident' && residentNeed > budget) {
    throw new CheckpointError(
      `${where}: resident weights ${fmt(total)} + activations for ${T} tokens ~${fmt(actResident)} exceed the memory budget ` +
        `${fmt(budget)}; allow streaming (streaming: 'auto') or raise HOPSCOPE_MEMORY_BUDGET.`,
    );
  }
  // Host RAM: streamed weights live there; so does the device when it is wasm/cpu.
  const hostNeed = (stream ? hostStreamed : 0) + (o.deviceIsHost ? (stream ? streamNeed : residentNeed) : 0);
  const totalMem = o.hostTotalBytes ?? os.totalmem();
  const freeMem = o.hostFreeBytes ?? os.freemem();
  if (hostNeed > totalMem) {
    throw new CheckpointError(
      `${where}: needs ~${fmt(hostNeed)} of host RAM (${stream ? `${fmt(hostStreamed)} of weights kept compact for streaming` : 'resident weights'}` +
        `${o.deviceIsHost ? ' plus the backend\'s own memory' : ''}) but this machine has ${fmt(totalMem)}. ` +
        `Use a BF16/F16 checkpoint (half the bytes of F32) or a machine with more memory.`,
    );
  }
  if (hostNeed > freeMem) {
    throw new CheckpointError(
      `${where}: needs ~${fmt(hostNeed)} of host RAM but only ${fmt(freeMem)} is free (of ${fmt(totalMem)}). ` +
        `Close other programs or models (model.dispose()), or use a BF16/F16 checkpoint.`,
    );
  }
  const summary = stream
    ? `streaming: ${units.size} units of up to ${fmt(unit)} uploaded per use; ${fmt(fixed)} resident; ${fmt(hostStreamed)} on the host; budget ${fmt(budget)}`
    : `resident: ${fmt(total)} of weights; budget ${fmt(budget)}`;
  return {
    budgetBytes: budget,
    stream,
    residentBytes: stream ? fixed : total + (tied ? headF32 : 0),
    unitBytes: stream ? unit : 0,
    hostBytes: stream ? hostStreamed : 0,
    plannedTokens: T,
    dims,
    summary,
  };
}

/** Throws a clear InputError before a forward whose activations would not fit next to the weights. */
export function checkActivations(plan: MemoryPlan | undefined, B: number, T: number, S: number, withCache: boolean): void {
  if (!plan) return;
  const act = activationBytes(plan.dims, B, T, S, plan.stream, withCache);
  const need = plan.residentBytes + plan.unitBytes + act;
  if (need > plan.budgetBytes)
    throw new InputError(
      `a forward over ${B} row(s) of ${T} tokens (${S} keys) needs ~${fmtBytes(act)} of activations; with ` +
        `${fmtBytes(plan.residentBytes + plan.unitBytes)} of weights on the device that exceeds the memory budget ` +
        `${fmtBytes(plan.budgetBytes)}. Use fewer rows or tokens, or raise HOPSCOPE_MEMORY_BUDGET if the device has the memory.`,
    );
}
