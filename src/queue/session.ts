// The worker's side of a run: the experiment function itself, replayed up to its sweeps. A session runs
// `runExperiment(spec)` with an executor that, instead of running the k-th sweep, parks there with the
// sweep's jobs (their clean states computed by this worker, once) and serves shards of it: each shard
// runs its keys through the local scheduler (`runJobs`, so start-at-layer and stacking pay) and turns
// them into rows with the experiment's own `toRows`. Nothing about an experiment is rewritten for the
// queue; the price is the experiment's prefix (identification, clean states) once per worker and spec.
import { InputError } from '../errors';
import { runExperiment, type RunContext, type SpecBase } from '../experiments';
import type { Row } from '../experiments/checkpoint';
import { runJobs, type PatchJob, type SweepOptions } from '../experiments/scheduler';
import type { Model } from '../models/model';

interface Parked {
  sweep: number;
  jobs: Map<string, PatchJob>;
  opts: SweepOptions;
  release(): void;
}

export class Session {
  /** Sweeps the replay has reached so far. */
  private reached = 0;
  /** The sweep shards are asked of; earlier sweeps are skipped (returned empty, nothing run). */
  private want: number;
  private parked: Parked | null = null;
  private waiters: (() => void)[] = [];
  private finished = false;
  private failure: Error | null = null;
  private readonly controller = new AbortController();
  active = 0;
  lastUsed = Date.now();
  /** Settles when the replayed experiment has returned (its clean states freed). */
  readonly done: Promise<void>;

  constructor(
    readonly run: string,
    private readonly model: Model,
    spec: unknown,
    ctx: Omit<RunContext, 'model' | 'executor' | 'signal'>,
    firstSweep: number,
  ) {
    this.want = firstSweep;
    // The coordinator's spec, as it sent it; runExperiment validates it again.
    this.done = runExperiment(spec as SpecBase, { ...ctx, model, signal: this.controller.signal, executor: (_m, jobs, opts) => this.arrive(jobs, opts) })
      .catch((e: Error) => {
        if (!this.controller.signal.aborted) this.failure = e;
      })
      .finally(() => {
        this.finished = true;
        this.parked = null;
        this.wake();
      })
      .then(() => undefined);
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    ws.forEach((w) => w());
  }

  private arrive(jobs: readonly PatchJob[], opts: SweepOptions): Promise<Row[]> {
    const sweep = this.reached++;
    this.controller.signal.throwIfAborted();
    if (sweep < this.want || jobs.length === 0) return Promise.resolve([]);
    return new Promise<Row[]>((resolve) => {
      this.parked = { sweep, jobs: new Map(jobs.map((j) => [j.key, j])), opts, release: () => resolve([]) };
      this.wake();
    });
  }

  /** Whether this session can still serve sweep `k` (a replay never goes back to an earlier sweep). */
  canServe(k: number): boolean {
    if (this.finished || this.controller.signal.aborted) return false;
    return this.parked ? k >= this.parked.sweep : k >= Math.max(this.reached, this.want);
  }

  private async reach(k: number): Promise<Parked> {
    this.want = Math.max(this.want, k);
    for (;;) {
      if (this.parked?.sweep === k) return this.parked;
      if (this.parked && this.parked.sweep < k) {
        if (this.active > 1) {
          // Another shard still works on the earlier sweep: move on once it is done.
          await new Promise<void>((r) => this.waiters.push(r));
          continue;
        }
        const p = this.parked;
        this.parked = null;
        p.release();
      }
      if (this.finished) {
        if (this.failure) throw this.failure;
        throw new InputError(`run ${this.run.slice(0, 12)}: the experiment made only ${this.reached} patch sweep(s) on this worker, not sweep ${k}; its jobs depend on something that differs between the coordinator and this worker`);
      }
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Runs the patch jobs `keys` of sweep `k`; rows per key and the jobs' warnings. */
  async shard(k: number, keys: readonly string[], onDone: (n: number) => void): Promise<{ rows: Record<string, Row[]>; warnings: string[]; ms: number; waitMs: number }> {
    this.active++;
    const t0 = performance.now();
    this.lastUsed = Date.now();
    try {
      const p = await this.reach(k);
      const t1 = performance.now();
      const jobs = keys.map((key) => {
        const j = p.jobs.get(key);
        if (!j)
          throw new InputError(
            `job key ${JSON.stringify(key)} is not one of the ${p.jobs.size} patch jobs that sweep ${k} of this spec makes on this worker (e.g. ${JSON.stringify([...p.jobs.keys()][0])}); ` +
              'the shard was made from another spec, or the entity pool differs between machines (identification is greedy generation: use the same backend on coordinator and workers)',
          );
        return j;
      });
      const rows: Record<string, Row[]> = {};
      const warnings = new Set<string>();
      let n = 0;
      const o = p.opts;
      for await (const out of runJobs(this.model, jobs, { batchSize: o.batchSize, strict: o.strict, naive: o.naive, donorPrefix: o.donorPrefix, signal: this.controller.signal })) {
        rows[out.job.key] = o.toRows(out);
        out.warnings.forEach((w) => warnings.add(w));
        onDone(++n);
      }
      return { rows, warnings: [...warnings], ms: performance.now() - t1, waitMs: t1 - t0 };
    } finally {
      this.active--;
      this.lastUsed = Date.now();
      this.wake();
    }
  }

  /** Ends the replay (its clean states are freed by the experiment's own finally blocks). */
  close(): void {
    this.controller.abort(new Error('session closed'));
    const p = this.parked;
    this.parked = null;
    p?.release();
    this.wake();
  }
}
