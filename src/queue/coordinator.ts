// The coordinator's side: the experiment runs here as it does locally (identification, clean states,
// the summary from all rows), with an executor that farms its patch sweeps out as shards on the queue
// and hands the rows back in job order. The table and summary are therefore made by the same code as a
// local run's. Rows are keyed by patch-job key: a shard retried or finished twice sets the same keys.
import { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { InputError } from '../errors';
import type { Row } from '../experiments/checkpoint';
import { resumeSweep, type PatchJob, type SweepExecutor, type SweepOptions } from '../experiments/scheduler';
import type { Model } from '../models/model';
import { connect, redactUrl } from './connection';
import { contentHash } from './hash';
import { HOPSCOPE_VERSION, KEY_PREFIX, PROTOCOL, queueName, runIdOf, shardId, type ShardData, type ShardResult } from './protocol';
import { shardsOf } from './shards';

export interface QueueRunOptions {
  /** redis://HOST:PORT/DB (rediss:// for TLS). */
  queue: string;
  /** The validated spec (defaults filled: the run's identity). */
  spec: unknown;
  /** Model folder (hashed: workers must hold the same weights). */
  model: string;
  /** Data folder, hashed likewise; absent for kinds without data. */
  data?: string;
  /** Patch jobs per shard (default 4 × the spec's batchSize). */
  shardSize?: number;
  /** Tries per shard before it is failed and reported (default 3). */
  attempts?: number;
  /** How often the coordinator looks at its shards, ms (default 500). */
  pollMs?: number;
  /** How long finished shards stay in Redis for a restarted coordinator, s (default 7 days). */
  keepSeconds?: number;
}

export interface ShardFailure {
  sweep: number;
  shard: string;
  keys: string[];
  error: string;
  attempts: number;
}

export interface QueueReport {
  queue: string;
  queueName: string;
  run: string;
  shards: number;
  /** Shards found finished in Redis when this coordinator started them (a restart resumed from the queue). */
  reused: number;
  /** Patch jobs whose rows came from the run folder's checkpoint. */
  fromCheckpoint: number;
  workers: string[];
  /** Worker time over the shards collected: running patch jobs, and waiting for their replays' prefix (ms). */
  computeMs: number;
  replayWaitMs: number;
  /** Wall time of the sweeps on the queue, from enqueueing to the last shard collected (ms). */
  sweepMs: number;
  failed: ShardFailure[];
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', abort);
      resolve();
    }
    function abort() {
      clearTimeout(t);
      reject(signal!.reason);
    }
    signal?.addEventListener('abort', abort, { once: true });
  });

export class QueueRun {
  private sweeps = 0;
  private readonly startedAt = Date.now();
  private readonly workers = new Set<string>();
  readonly report: QueueReport;

  private constructor(
    private readonly conn: Redis,
    private readonly q: Queue<ShardData, ShardResult>,
    private readonly o: QueueRunOptions,
    private readonly hashes: { model: string; data: string; run: string },
  ) {
    this.report = { queue: redactUrl(o.queue), queueName: q.name, run: hashes.run, shards: 0, reused: 0, fromCheckpoint: 0, workers: [], computeMs: 0, replayWaitMs: 0, sweepMs: 0, failed: [] };
  }

  static async open(o: QueueRunOptions): Promise<QueueRun> {
    const model = contentHash(o.model);
    const data = o.data ? contentHash(o.data) : 'none';
    const conn = await connect(o.queue);
    const q = new Queue<ShardData, ShardResult>(queueName(model, data), { connection: conn, prefix: KEY_PREFIX });
    q.on('error', () => {});
    return new QueueRun(conn, q, o, { model, data, run: runIdOf(o.spec, model, data) });
  }

  /** Pass as `executor` in the experiment's context. */
  readonly executor: SweepExecutor = (model, jobs, opts) => this.runSweep(model, jobs, opts);

  private async runSweep(model: Model, jobs: readonly PatchJob[], opts: SweepOptions): Promise<Row[]> {
    const sweep = this.sweeps++;
    const t0 = performance.now();
    const byKey = new Map(jobs.map((j) => [j.key, j]));
    const resumed = resumeSweep(jobs, opts, `sweep ${sweep}`);
    const { rowsByKey, todo } = resumed;
    let done = resumed.done;
    this.report.fromCheckpoint += resumed.done;
    const size = this.o.shardSize ?? 4 * opts.batchSize;
    const shards = shardsOf(model, todo, size, opts.donorPrefix).map((s) => s.map((j) => j.key));
    const pending = new Map<string, string[]>();
    for (const keys of shards) pending.set(shardId(this.hashes.run, sweep, keys), keys);
    this.report.shards += pending.size;
    const keepFor = { age: this.o.keepSeconds ?? 7 * 24 * 3600 };
    const ids = [...pending.keys()];
    for (let i = 0; i < ids.length; i += 500)
      await this.q.addBulk(
        ids.slice(i, i + 500).map((id) => ({
          name: `sweep-${sweep}`,
          data: { protocol: PROTOCOL, hopscope: HOPSCOPE_VERSION, run: this.hashes.run, spec: this.o.spec, model: this.hashes.model, data: this.hashes.data, sweep, keys: pending.get(id)! },
          opts: { jobId: id, attempts: this.o.attempts ?? 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: keepFor, removeOnFail: keepFor },
        })),
      );

    const inflight = new Map<string, number>();
    const complete = (id: string, res: ShardResult) => {
      this.workers.add(res.worker);
      const keys = pending.get(id)!;
      const missing = keys.filter((k) => !res.rows[k]);
      if (missing.length) return fail(id, `worker ${res.worker} returned no rows for ${missing.join(', ')}`, 1);
      if (res.warnings.length) opts.onWarnings?.(res.warnings);
      this.report.computeMs += res.ms ?? 0;
      this.report.replayWaitMs += res.waitMs ?? 0;
      for (const k of keys) {
        if (rowsByKey.has(k)) continue;
        rowsByKey.set(k, res.rows[k]);
        opts.checkpoint?.add(k, res.rows[k]);
        opts.onRows?.(res.rows[k], byKey.get(k)!);
        done++;
      }
      pending.delete(id);
      inflight.delete(id);
    };
    const fail = (id: string, error: string, attempts: number) => {
      this.report.failed.push({ sweep, shard: id, keys: pending.get(id)!, error, attempts });
      pending.delete(id);
      inflight.delete(id);
    };
    let first = true;
    while (pending.size) {
      opts.signal?.throwIfAborted();
      const look = [...pending.keys()];
      for (let i = 0; i < look.length; i += 200) {
        const batch = await Promise.all(look.slice(i, i + 200).map((id) => Job.fromId<ShardData, ShardResult>(this.q, id)));
        for (const [n, job] of batch.entries()) {
          const id = look[i + n];
          if (!job) throw new InputError(`shard ${id} vanished from ${this.q.name} (the queue was emptied while the run went on?); run the command again to re-add it`);
          if (job.finishedOn && job.returnvalue) {
            if (first && job.finishedOn < this.startedAt) this.report.reused++;
            complete(id, job.returnvalue);
          } else if (job.finishedOn && job.failedReason && (await job.isFailed())) {
            // Failed before this coordinator started (an earlier run of the same spec): one more round of tries.
            if (first && job.finishedOn < this.startedAt) await job.retry('failed');
            else fail(id, job.failedReason, job.attemptsMade);
          } else inflight.set(id, typeof job.progress === 'number' ? job.progress : 0);
        }
      }
      first = false;
      let partial = 0;
      for (const v of inflight.values()) partial += v;
      opts.onProgress?.(done + partial);
      if (pending.size) await sleep(this.o.pollMs ?? 500, opts.signal);
    }
    this.report.workers = [...this.workers].sort();
    this.report.sweepMs += performance.now() - t0;
    return jobs.flatMap((j) => rowsByKey.get(j.key) ?? []);
  }

  async close(): Promise<void> {
    await this.q.close();
    this.conn.disconnect();
  }
}
