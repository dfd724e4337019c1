// The sweep scheduler: runs many intervened ("patched") runs of prompts whose clean states are cached.
// Each run starts at the first layer its interventions touch, from the cached clean residual (no
// recomputation of earlier layers, nor of the vision tower); runs that start at the same layer are
// stacked as rows of one forward; generation reuses the clean keys/values of the skipped layers.
// Results stream out as they complete; an AbortSignal is honoured between forwards; finished jobs are
// checkpointed (JSONL) so an interrupted sweep resumes. Exact: equals one full forward per run.
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../errors';
import { compileInterventions, mergeRunOptions, startLayerOf, type Compiled } from '../interventions/compile';
import type { RowGeometry } from '../interventions/selectors';
import type { InterventionSpec, SourceRun } from '../interventions/types';
import { positionsFromMask, disposeCache, type KVCache } from '../models/decoder';
import { RunContext, type RunOptions } from '../models/hooks';
import type { Model } from '../models/model';
import { batchesOf, chunks, makeBatch, padId, rowInputs, type Batch } from './batch';
import type { RunCheckpoint, Row } from './checkpoint';
import { eosSet } from './greedy';
import type { PromptCase, PromptSource } from './source';

/** Clean (un-intervened) states of a batch: every block's input, the last block's output, last-position logits. */
export interface CleanState {
  batch: Batch;
  /** resid[l] = input of block l [B, T, D] (l = 0..L-1); resid[L] = raw output of the last block. */
  resid: tf.Tensor[];
  /** The same states as a patch source (hooks lm.embed, lm.blocks.{l}.resid_pre / resid_post, lm.final_norm). */
  source: SourceRun;
  /** Logits [V] at the last prompt position, per row. */
  lastLogits: Float32Array[];
  dispose(): void;
}

export function residHooks(numLayers: number): string[] {
  return [...Array.from({ length: numLayers }, (_, l) => `lm.blocks.${l}.resid_pre`), `lm.blocks.${numLayers - 1}.resid_post`, 'lm.final_norm'];
}

export function cleanState(model: Model, batch: Batch): CleanState {
  const L = model.numLayers;
  const out = model.forward(batch.inputs, { cache: residHooks(L) });
  const resid = [...Array.from({ length: L }, (_, l) => out.cache.get(`lm.blocks.${l}.resid_pre`)!), out.cache.get(`lm.blocks.${L - 1}.resid_post`)!];
  const lastLogits = lastRows(out.logits!);
  const [B, T, V] = out.logits!.shape as number[];
  out.logits!.dispose();
  out.hidden.dispose();
  const cache = new Map<string, tf.Tensor>();
  cache.set('lm.embed', resid[0]);
  for (let l = 0; l < L; l++) {
    cache.set(`lm.blocks.${l}.resid_pre`, resid[l]);
    cache.set(`lm.blocks.${l}.resid_post`, resid[l + 1]);
  }
  const finalNorm = out.cache.get('lm.final_norm')!;
  cache.set('lm.final_norm', finalNorm);
  return {
    batch,
    resid,
    source: { cache, rows: batch.rows },
    lastLogits,
    dispose: () => tf.dispose([...resid, finalNorm]),
  };
}

/** One intervened run of one prompt (a row of a clean state). */
export interface PatchJob {
  /** Unique key (checkpoint identity). */
  key: string;
  clean: CleanState;
  row: number;
  /** Interventions written for this prompt alone; source rows default to `row`. */
  interventions: InterventionSpec[];
  /** Other runs' states by name (the clean state is always available as "clean"). */
  sources?: Record<string, SourceRun>;
  /** Greedy tokens to generate (0: one forward, last-position logits only). */
  generate?: number;
  /** Free data for the caller's row builder. */
  meta?: Record<string, unknown>;
}

export interface JobOutput {
  job: PatchJob;
  /** Logits [V] at the last prompt position under the interventions. */
  lastLogits: Float32Array;
  /** Greedy tokens (when `generate` > 0), EOS included as generated. */
  newTokens: number[] | null;
  warnings: string[];
}

export interface RunJobsOptions {
  batchSize: number;
  signal?: AbortSignal;
  /** One full forward (or generate) per job on the unpadded prompt: the reference the scheduler must equal. */
  naive?: boolean;
  strict?: boolean;
}

/** Source rows default to the job's row in its own clean batch (the compile context knows only batch rows). */
function withRows(specs: InterventionSpec[], job: PatchJob, batchRow: number): InterventionSpec[] {
  return specs.map((s) => {
    const o = { ...s, rows: [batchRow] } as InterventionSpec;
    if ((o.kind === 'patch' || o.kind === 'ablate' || o.kind === 'steer') && 'source' in o && o.source && o.source.row === undefined)
      o.source = { ...o.source, row: job.row };
    if (o.kind === 'freeze' && o.source && o.source.row === undefined) o.source = { ...o.source, row: job.row };
    if (o.kind === 'ablate' && o.mean && !Array.isArray(o.mean) && o.mean.row === undefined) o.mean = { ...o.mean, row: job.row };
    if (o.kind === 'steer' && !Array.isArray(o.vector) && o.vector.row === undefined) o.vector = { ...o.vector, row: job.row };
    return o;
  });
}

function sourcesOf(job: PatchJob): Record<string, SourceRun> {
  return { clean: job.clean.source, ...job.sources };
}

function compileFor(model: Model, jobs: PatchJob[], rows: RowGeometry[], strict: boolean | undefined): Compiled[] {
  const out: Compiled[] = [];
  try {
    jobs.forEach((job, i) =>
      out.push(
        compileInterventions(withRows(job.interventions, job, i), {
          rows,
          numHeads: model.text.numHeads,
          numLayers: model.numLayers,
          sources: sourcesOf(job),
          strict,
        }),
      ),
    );
  } catch (e) {
    out.forEach((c) => c.dispose());
    throw e;
  }
  return out;
}

function lastRows(logits: tf.Tensor): Float32Array[] {
  const [B, T, V] = logits.shape as number[];
  const t = tf.tidy(() => logits.slice([0, T - 1, 0], [B, 1, V]).reshape([B, V]));
  const d = t.dataSync() as Float32Array;
  t.dispose();
  return Array.from({ length: B }, (_, b) => d.slice(b * V, (b + 1) * V));
}

function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/** Clean keys/values of every layer, computed once per clean state when a generating job needs them. */
const KV = new WeakMap<CleanState, KVCache>();
function cleanKV(model: Model, clean: CleanState): KVCache {
  let kv = KV.get(clean);
  if (kv) return kv;
  const mask = clean.batch.inputs.attentionMask!;
  tf.tidy(() => {
    const r = model.decoder.forward({
      embeds: clean.resid[0],
      positions: positionsFromMask(mask),
      keyMask: mask,
      ctx: new RunContext({ startLayer: 0, startResid: clean.resid[0] }),
      wantCache: true,
    });
    kv = r.cache;
  });
  KV.set(clean, kv!);
  const dispose = clean.dispose;
  clean.dispose = () => {
    disposeCache(kv);
    dispose();
  };
  return kv!;
}

/**
 * Greedy generation of a stacked chunk starting at block `layer` from `startResid`, with the clean
 * keys/values of blocks < layer. Mirrors ModelBase.generate (decode positions count real tokens only).
 */
function generateFrom(model: Model, jobs: PatchJob[], layer: number, run: RunOptions, maxNewTokens: number, startResid: tf.Tensor): { first: Float32Array[]; tokens: number[][]; unused: string[] } {
  const B = jobs.length;
  const T = jobs[0].clean.batch.T;
  const V = model.vocabSize;
  const mask = jobs.map((j) => [...j.clean.batch.inputs.attentionMask![j.row]]);
  const eos = eosSet(model);
  const pad = padId(model);
  const prefill = new RunContext({ ...run, startLayer: layer, startResid });
  const decode = new RunContext({ hooks: run.hooks, attnMask: run.attnMask });
  let kv: KVCache | undefined;
  try {
    const logits0 = tf.tidy(() => {
      const r = model.decoder.forward({ embeds: startResid, positions: positionsFromMask(mask), keyMask: mask, ctx: prefill, wantCache: true });
      kv = r.cache!;
      for (let i = 0; i < layer; i++) {
        const parts = jobs.map((j) => {
          const c = cleanKV(model, j.clean);
          return { k: c.k[i].slice([j.row, 0, 0, 0], [1, -1, -1, -1]), v: c.v[i].slice([j.row, 0, 0, 0], [1, -1, -1, -1]) };
        });
        kv.k[i] = tf.keep(tf.concat(parts.map((p) => p.k), 0));
        kv.v[i] = tf.keep(tf.concat(parts.map((p) => p.v), 0));
      }
      return r.logits!.slice([0, T - 1, 0], [B, 1, V]).reshape([B, V]);
    });
    let last = logits0.dataSync() as Float32Array;
    logits0.dispose();
    const first = Array.from({ length: B }, (_, b) => last.slice(b * V, (b + 1) * V));
    const tokens: number[][] = jobs.map(() => []);
    const done = new Array<boolean>(B).fill(false);
    for (let s = 0; s < maxNewTokens; s++) {
      const next: number[] = [];
      for (let b = 0; b < B; b++) {
        const tok = done[b] ? pad : argmax(last.subarray(b * V, (b + 1) * V));
        next.push(tok);
        tokens[b].push(tok);
        if (eos.has(tok)) done[b] = true;
      }
      if (s === maxNewTokens - 1 || done.every(Boolean)) break;
      const prev: KVCache = kv!;
      for (const r of mask) r.push(1);
      const positions = mask.map((r) => Int32Array.of(r.reduce((a, x) => a + x, 0) - 1));
      decode.step = s + 1;
      const step = tf.tidy(() => {
        const r = model.decoder.forward({ embeds: model.decoder.embed(next.map((t) => [t])), positions, keyMask: mask, ctx: decode, cache: prev, wantCache: true });
        kv = r.cache;
        return r.logits!.reshape([B, V]);
      });
      disposeCache(prev);
      last = step.dataSync() as Float32Array;
      step.dispose();
    }
    const unusedDecode = new Set(decode.unusedHooks());
    return { first, tokens, unused: prefill.unusedHooks().filter((h) => unusedDecode.has(h)) };
  } finally {
    disposeCache(kv);
    tf.dispose([...prefill.cached.values(), ...decode.cached.values()]);
  }
}

function canStartLate(model: Model): boolean {
  // Start-at-layer generation computes 1-D RoPE positions from the mask; M-RoPE families run in full.
  return !model.text.mropeSection;
}

/** Runs one job the naive way: a full forward (or generate) of its prompt alone, unpadded. */
function runNaive(model: Model, job: PatchJob, strict: boolean | undefined): JobOutput {
  const { inputs, row } = rowInputs(job.clean.batch, job.row);
  const [compiled] = compileFor(model, [job], [row], strict);
  try {
    if (job.generate) {
      const g = model.generate(inputs, { maxNewTokens: job.generate, run: compiled.run, returnStepLogits: true });
      tf.dispose([...g.cache.values()]);
      const rep = compiled.report(g.unusedHooks);
      return { job, lastLogits: g.stepLogits![0][0], newTokens: g.newTokens[0], warnings: rep.warnings };
    }
    const out = model.forward(inputs, compiled.run);
    try {
      const rep = compiled.report(out.unusedHooks);
      return { job, lastLogits: lastRows(out.logits!)[0], newTokens: null, warnings: rep.warnings };
    } finally {
      out.dispose();
    }
  } finally {
    compiled.dispose();
    inputs.pixelValues?.dispose();
  }
}

/** Runs a chunk of jobs that start at the same layer, as the rows of one forward. */
function runChunk(model: Model, jobs: PatchJob[], layer: number, strict: boolean | undefined): JobOutput[] {
  const T = jobs[0].clean.batch.T;
  const rows = jobs.map((j) => j.clean.batch.rows[j.row]);
  const compiled = compileFor(model, jobs, rows, strict);
  const startResid = tf.tidy(() => tf.concat(jobs.map((j) => j.clean.resid[layer].slice([j.row, 0, 0], [1, T, -1])), 0));
  try {
    const run = mergeRunOptions(compiled.map((c) => c.run));
    const gen = jobs[0].generate ?? 0;
    if (gen > 0) {
      const g = generateFrom(model, jobs, layer, run, gen, startResid);
      return jobs.map((job, i) => ({ job, lastLogits: g.first[i], newTokens: g.tokens[i], warnings: compiled[i].report(g.unused).warnings }));
    }
    const inputs = {
      inputIds: jobs.map((j) => j.clean.batch.inputs.inputIds[j.row]),
      attentionMask: jobs.map((j) => j.clean.batch.inputs.attentionMask![j.row]),
    };
    const out = model.forward(inputs, { ...run, startLayer: layer, startResid });
    try {
      const last = lastRows(out.logits!);
      return jobs.map((job, i) => ({ job, lastLogits: last[i], newTokens: null, warnings: compiled[i].report(out.unusedHooks).warnings }));
    } finally {
      out.dispose();
    }
  } finally {
    startResid.dispose();
    compiled.forEach((c) => c.dispose());
  }
}

/** Yields every job's output, grouped into stacked forwards by start layer, prompt length and generation length. */
export async function* runJobs(model: Model, jobs: readonly PatchJob[], opts: RunJobsOptions): AsyncGenerator<JobOutput> {
  if (opts.naive) {
    for (const job of jobs) {
      opts.signal?.throwIfAborted();
      yield runNaive(model, job, opts.strict);
      await new Promise((r) => setImmediate(r));
    }
    return;
  }
  const groups = new Map<string, { layer: number; jobs: PatchJob[] }>();
  const full: PatchJob[] = [];
  for (const job of jobs) {
    const s = startLayerOf(job.interventions, model.numLayers);
    if (s.full || (job.generate && !canStartLate(model))) {
      full.push(job);
      continue;
    }
    const key = `${s.layer}/${job.clean.batch.T}/${job.generate ?? 0}`;
    const g = groups.get(key) ?? { layer: s.layer, jobs: [] };
    g.jobs.push(job);
    groups.set(key, g);
  }
  // Later start layers first: they are the cheapest, so partial results arrive early.
  const ordered = [...groups.values()].sort((a, b) => b.layer - a.layer);
  for (const g of ordered)
    for (const chunk of chunks(g.jobs, opts.batchSize)) {
      opts.signal?.throwIfAborted();
      for (const o of runChunk(model, chunk, g.layer, opts.strict)) yield o;
      await new Promise((r) => setImmediate(r));
    }
  for (const job of full) {
    opts.signal?.throwIfAborted();
    yield runNaive(model, job, opts.strict);
    await new Promise((r) => setImmediate(r));
  }
}

export interface SweepOptions extends RunJobsOptions {
  /** Table rows of one finished job (kept in the checkpoint, so they must be JSON). */
  toRows(out: JobOutput): Row[];
  checkpoint?: RunCheckpoint;
  /** Rows as each job completes (also for jobs restored from the checkpoint). */
  onRows?(rows: Row[], job: PatchJob): void;
  /** After each job: how many of `total` are done. */
  onProgress?(done: number): void;
  /** Collects intervention warnings (deduplicated by the caller). */
  onWarnings?(w: string[]): void;
}

/** Runs the jobs not already in the checkpoint; returns every job's rows in job order. */
export async function sweep(model: Model, jobs: readonly PatchJob[], opts: SweepOptions): Promise<Row[]> {
  const keys = new Set<string>();
  for (const j of jobs) {
    if (keys.has(j.key)) throw new InputError(`sweep: duplicate job key ${j.key}`);
    keys.add(j.key);
  }
  const rowsByKey = new Map<string, Row[]>();
  let done = 0;
  const todo: PatchJob[] = [];
  for (const j of jobs) {
    const saved = opts.checkpoint?.rows(j.key);
    if (saved) {
      rowsByKey.set(j.key, saved);
      opts.onRows?.(saved, j);
      opts.onProgress?.(++done);
    } else todo.push(j);
  }
  for await (const out of runJobs(model, todo, opts)) {
    const rows = opts.toRows(out);
    rowsByKey.set(out.job.key, rows);
    opts.checkpoint?.add(out.job.key, rows);
    if (out.warnings.length) opts.onWarnings?.(out.warnings);
    opts.onRows?.(rows, out.job);
    opts.onProgress?.(++done);
  }
  return jobs.flatMap((j) => rowsByKey.get(j.key) ?? []);
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
