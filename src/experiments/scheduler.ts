// The sweep scheduler: runs many intervened ("patched") runs of prompts whose clean states are cached.
// Each run starts at the first block its interventions touch and at the first prompt position they can
// affect (plan.ts): earlier blocks and positions are the clean run's (its cached residuals and keys/
// values, or a donor's when a patch makes them the donor's); runs with the same plan are stacked as rows
// of one forward; generation continues from the clean keys/values of the skipped blocks. Results stream
// out as they complete; an AbortSignal is honoured between forwards; finished jobs are checkpointed
// (JSONL) so an interrupted sweep resumes. Exact: equals one full forward (or generate) per run.
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../errors';
import { compileInterventions, mergeRunOptions, type Compiled } from '../interventions/compile';
import { guardReport, Tracker } from '../interventions/guard';
import { resolveSelector, toSelector, type RowGeometry } from '../interventions/selectors';
import type { InterventionSpec, PatchSpec, SourceRun } from '../interventions/types';
import { greedyDecode, type DecodeState } from '../models/decode';
import { disposeCache, type KVCache } from '../models/decoder';
import { RunContext } from '../models/hooks';
import type { Model, ModelInputs } from '../models/model';
import { chunks, padId, rowInputs } from './batch';
import type { RunCheckpoint, Row } from './checkpoint';
import { lastRows } from './clean-state';
import { eosSet } from './greedy';
import { planJob, type PatchJob, type Plan } from './plan';

export { cleanState, cleanStates, residHooks, type CleanState, type CleanSet } from './clean-state';

export type { PatchJob } from './plan';

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
  /** Reuse a donor's keys/values when a patch makes a prefix equal the donor's run (default true). */
  donorPrefix?: boolean;
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

/** Rows [row, :, a:b] of every layer >= `layer` of a clean state's keys or values. */
function kvRows(t: tf.Tensor, row: number, a: number, b: number): tf.Tensor {
  return t.slice([row, 0, a, 0], [1, -1, b - a, -1]);
}

/** Keys/values of positions < from for one job, in its padded coordinates (donor plans read the donor's). */
function prefixOf(job: PatchJob, plan: Plan, which: 'k' | 'v', i: number): tf.Tensor {
  const own = job.clean.kv![which][i];
  if (!plan.donor) return kvRows(own, job.row, 0, plan.from);
  const off = job.clean.batch.rows[job.row].offset;
  const d = plan.donor;
  const dOff = d.clean.batch.rows[d.row].offset;
  const donorPart = kvRows(d.clean.kv![which][i], d.row, dOff, dOff + plan.from - off);
  return off > 0 ? tf.concat([kvRows(own, job.row, 0, off), donorPart], 2) : donorPart;
}

/** The guard for a patch realised through the donor's prefix: how far the donor's states are from the target's. */
function donorReport(job: PatchJob, plan: Plan, strict: boolean | undefined): string[] {
  const spec = job.interventions[plan.donor!.patch] as PatchSpec;
  const d = plan.donor!;
  const P = resolveSelector(toSelector(spec.at), job.clean.batch.rows[job.row]).prompt;
  const Q = resolveSelector(toSelector(spec.source.at ?? spec.at), d.clean.batch.rows[d.row]).prompt;
  // The hook it stands for: a tracker with no hook counts as never reached, and its no-op warning was skipped.
  const tracker = new Tracker(spec.label ?? `intervention 0 (patch @ layer ${plan.layer} via the donor's states)`, 'patch', [`lm.blocks.${plan.layer}.resid_pre`]);
  try {
    tf.tidy(() => {
      // A donor plan's spans are contiguous in both runs (plan.ts donorPlan): slices, not gathers (wasm's GatherV2
      // took 12.7 ms for the 256 image rows of issue 20's mid shapes, 8.5 % of the sweep).
      const span = (t: tf.Tensor, row: number, ps: number[]) => t.slice([row, ps[0], 0], [1, ps.length, -1]).reshape([ps.length, -1]);
      tracker.wrote(span(job.clean.resid[plan.layer], job.row, P), span(d.clean.resid[plan.layer], d.row, Q), P.length);
    });
    return guardReport([tracker], [], strict ?? false).warnings;
  } finally {
    tracker.dispose();
  }
}

/**
 * Runs jobs sharing one plan as the rows of one forward: blocks from `plan.layer`, positions from
 * `plan.from` (the rest from the clean keys/values), then greedy decoding when asked. Mirrors
 * ModelBase.generate: decode positions count real tokens only; EOS rows are padded.
 */
function runPlanned(model: Model, items: { job: PatchJob; plan: Plan }[], strict: boolean | undefined): JobOutput[] {
  const jobs = items.map((x) => x.job);
  const plan = items[0].plan;
  const { layer, from } = plan;
  const T = jobs[0].clean.batch.T;
  const B = jobs.length;
  const V = model.vocabSize;
  const L = model.numLayers;
  const gen = jobs[0].generate ?? 0;
  const rows = jobs.map((j) => j.clean.batch.rows[j.row]);
  const donorWarnings = plan.donor ? items.map((x) => donorReport(x.job, x.plan, strict)) : null;
  const compiled = compileFor(model, plan.donor ? jobs.map((j) => ({ ...j, interventions: [] })) : jobs, rows, strict);
  const mask = jobs.map((j) => [...j.clean.batch.inputs.attentionMask![j.row]]);
  const startResid = tf.tidy(() => tf.concat(jobs.map((j) => j.clean.resid[layer].slice([j.row, from, 0], [1, T - from, -1])), 0));
  const run = mergeRunOptions(compiled.map((c) => c.run));
  const prefill = new RunContext({ ...run, startLayer: layer, startResid, logits: 'last' });
  const decode = new RunContext({ hooks: run.hooks, attnMask: run.attnMask });
  let kv: KVCache | undefined;
  try {
    const logits0 = tf.tidy(() => {
      let cache: KVCache | undefined;
      if (from > 0) {
        cache = { k: [], v: [], keyMask: mask, length: from };
        for (let i = layer; i < L; i++) {
          cache.k[i] = tf.concat(items.map((x) => prefixOf(x.job, x.plan, 'k', i)), 0);
          cache.v[i] = tf.concat(items.map((x) => prefixOf(x.job, x.plan, 'v', i)), 0);
        }
      }
      const positions = jobs.map((j) => j.clean.positions![j.row].slice(from));
      const r = model.resume({ embeds: startResid, positions, keyMask: mask, ctx: prefill, cache, wantCache: gen > 0 });
      if (gen > 0) {
        kv = r.cache!;
        for (let i = 0; i < layer; i++) {
          kv.k[i] = tf.keep(tf.concat(jobs.map((j) => kvRows(j.clean.kv!.k[i], j.row, 0, T)), 0));
          kv.v[i] = tf.keep(tf.concat(jobs.map((j) => kvRows(j.clean.kv!.v[i], j.row, 0, T)), 0));
        }
      }
      const t = r.logits!.shape[1] as number;
      return r.logits!.slice([0, t - 1, 0], [B, 1, V]).reshape([B, V]);
    });
    const last = logits0.dataSync() as Float32Array;
    logits0.dispose();
    const first = Array.from({ length: B }, (_, b) => last.slice(b * V, (b + 1) * V));
    let tokens: number[][] = jobs.map(() => []);
    if (gen > 0) {
      // The model's greedy decoder continues from this prefill's cache (src/models/decode.ts).
      const state: DecodeState = { kv: kv!, mask };
      try {
        tokens = greedyDecode(model, last, state, { maxNewTokens: gen, eos: eosSet(model), padId: padId(model), ctx: decode }).tokens;
      } finally {
        kv = state.kv;
      }
    }
    const unusedDecode = new Set(gen > 0 ? decode.unusedHooks() : prefill.unusedHooks());
    const unused = prefill.unusedHooks().filter((h) => unusedDecode.has(h));
    return jobs.map((job, i) => ({
      job,
      lastLogits: first[i],
      newTokens: gen > 0 ? tokens[i] : null,
      warnings: donorWarnings ? donorWarnings[i] : compiled[i].report(unused).warnings,
    }));
  } finally {
    disposeCache(kv);
    tf.dispose([startResid, ...prefill.cached.values(), ...decode.cached.values()]);
    compiled.forEach((c) => c.dispose());
  }
}

/** Start-at-layer forwards through the model (families whose positions the scheduler cannot compute, e.g. M-RoPE). */
function runFromLayer(model: Model, jobs: PatchJob[], layer: number, strict: boolean | undefined): JobOutput[] {
  const T = jobs[0].clean.batch.T;
  const compiled = compileFor(model, jobs, jobs.map((j) => j.clean.batch.rows[j.row]), strict);
  const startResid = tf.tidy(() => tf.concat(jobs.map((j) => j.clean.resid[layer].slice([j.row, 0, 0], [1, T, -1])), 0));
  try {
    const inputs: ModelInputs = {
      inputIds: jobs.map((j) => j.clean.batch.inputs.inputIds[j.row]),
      attentionMask: jobs.map((j) => j.clean.batch.inputs.attentionMask![j.row]),
    };
    // Families with image-dependent positions (Qwen2-VL M-RoPE) compute them from the rows' image grids.
    const px = jobs.map((j) => j.clean.batch.pixelRows[j.row]);
    if (px.some((p) => p?.gridThw)) inputs.imageGridThw = px.flatMap((p) => (p?.gridThw ? [p.gridThw] : []));
    if (px.some((p) => p?.imageSize)) inputs.imageSizes = px.flatMap((p) => (p?.imageSize ? [p.imageSize] : []));
    const out = model.forward(inputs, { ...mergeRunOptions(compiled.map((c) => c.run)), startLayer: layer, startResid });
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

/** Yields every job's output; jobs with the same plan run stacked, later (cheaper) plans first. */
export async function* runJobs(model: Model, jobs: readonly PatchJob[], opts: RunJobsOptions): AsyncGenerator<JobOutput> {
  const tick = () => new Promise((r) => setImmediate(r));
  if (opts.naive) {
    for (const job of jobs) {
      opts.signal?.throwIfAborted();
      yield runNaive(model, job, opts.strict);
      await tick();
    }
    return;
  }
  const groups = new Map<string, { job: PatchJob; plan: Plan }[]>();
  const full: PatchJob[] = [];
  for (const job of jobs) {
    const plan = planJob(model, job, { donorPrefix: opts.donorPrefix });
    if (plan.full) {
      full.push(job);
      continue;
    }
    const key = `${plan.layer}/${plan.from}/${plan.donor ? 'donor' : 'own'}/${job.clean.batch.T}/${job.generate ?? 0}`;
    groups.set(key, [...(groups.get(key) ?? []), { job, plan }]);
  }
  const cost = (g: { job: PatchJob; plan: Plan }[]) => (model.numLayers - g[0].plan.layer) * (g[0].job.clean.batch.T - g[0].plan.from);
  const ordered = [...groups.values()].sort((a, b) => cost(a) - cost(b));
  for (const g of ordered)
    for (const chunk of chunks(g, opts.batchSize)) {
      opts.signal?.throwIfAborted();
      const outs = chunk[0].job.clean.kv
        ? runPlanned(model, chunk, opts.strict)
        : runFromLayer(model, chunk.map((x) => x.job), chunk[0].plan.layer, opts.strict);
      for (const o of outs) yield o;
      await tick();
    }
  for (const job of full) {
    opts.signal?.throwIfAborted();
    yield runNaive(model, job, opts.strict);
    await tick();
  }
}

/**
 * Runs a sweep's jobs somewhere else (src/queue farms them out to workers) and returns every job's rows
 * in job order, honouring the options' checkpoint and callbacks as `sweep` does.
 */
export type SweepExecutor = (model: Model, jobs: readonly PatchJob[], opts: SweepOptions) => Promise<Row[]>;

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
  /** Where the jobs run (default: here). The experiment around the sweep is unchanged either way. */
  executor?: SweepExecutor;
}

/**
 * The start of every sweep, wherever its jobs run (here, or on a queue's workers): checks the keys are unique,
 * takes the rows the run's checkpoint already holds (reported through onRows/onProgress as if just run) and
 * returns the jobs left to do.
 */
export function resumeSweep(jobs: readonly PatchJob[], opts: Pick<SweepOptions, 'checkpoint' | 'onRows' | 'onProgress'>, what = 'sweep'): { rowsByKey: Map<string, Row[]>; todo: PatchJob[]; done: number } {
  const keys = new Set<string>();
  for (const j of jobs) {
    if (keys.has(j.key)) throw new InputError(`${what}: duplicate job key ${j.key}`);
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
  return { rowsByKey, todo, done };
}

/** Runs the jobs not already in the checkpoint; returns every job's rows in job order. */
export async function sweep(model: Model, jobs: readonly PatchJob[], opts: SweepOptions): Promise<Row[]> {
  if (opts.executor) return opts.executor(model, jobs, { ...opts, executor: undefined });
  const resumed = resumeSweep(jobs, opts);
  const { rowsByKey, todo } = resumed;
  let done = resumed.done;
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

