// A queue worker: one model (loaded once) and one data folder, listening on the queue of their content
// hashes. Each BullMQ job is a shard of one sweep of one spec; the worker replays the spec's experiment
// in a Session (kept across shards of the same run) and returns the shard's rows. A worker killed
// mid-shard holds a lease (BullMQ lock) that lapses after `leaseMs`: another worker's stalled-job check
// then puts the shard back in the queue, and since rows travel only in the completed job's return value
// a half-done shard leaves nothing behind.
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { InputError } from '../errors';
import { loadModelWithAssets } from '../experiments/assets';
import type { Model } from '../models/model';
import { connect, redactUrl } from './connection';
import { contentHash } from './hash';
import { HOPSCOPE_VERSION, KEY_PREFIX, PROTOCOL, queueName, type ShardData, type ShardResult } from './protocol';
import { Session } from './session';

export interface WorkerOptions {
  /** redis://HOST:PORT/DB (rediss:// for TLS, password in the URL). */
  queue: string;
  model: string;
  data?: string;
  /** Text-only backbone folder (recovery specs). */
  backbone?: string;
  /** Shards run at once (they interleave between forwards; more than 1 pays only when one waits on Redis). */
  concurrency?: number;
  /** Lease of a running shard in ms: a killed worker's shard is taken over this long after it stopped renewing. */
  leaseMs?: number;
  /** Runs of other specs kept replayed (their clean states stay in memory). */
  maxSessions?: number;
  log?(line: string): void;
}

export interface QueueWorker {
  name: string;
  queueName: string;
  modelHash: string;
  dataHash: string;
  /** Shards completed by this worker. */
  readonly completed: number;
  /** Stops taking shards, finishes the running ones, frees the model. */
  close(): Promise<void>;
}

export async function startWorker(o: WorkerOptions): Promise<QueueWorker> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const modelDir = path.resolve(o.model);
  const modelHash = contentHash(modelDir);
  const dataHash = o.data ? contentHash(o.data) : 'none';
  const conn: Redis = await connect(o.queue);
  const model: Model = loadModelWithAssets(modelDir);
  const backbone: Model | undefined = o.backbone ? loadModelWithAssets(path.resolve(o.backbone)) : undefined;
  const name = `${os.hostname()}:${process.pid}`;
  const sessions = new Map<string, Session>();
  const maxSessions = o.maxSessions ?? 1;
  let completed = 0;

  const sessionFor = (d: ShardData): Session => {
    let s = sessions.get(d.run);
    if (s && !s.canServe(d.sweep)) {
      s.close();
      sessions.delete(d.run);
      s = undefined;
    }
    if (s) return s;
    // Idle replays of other runs make room (their clean states are the memory a worker holds).
    const idle = [...sessions.values()].filter((x) => x.active === 0).sort((a, b) => a.lastUsed - b.lastUsed);
    while (sessions.size >= maxSessions && idle.length) {
      const old = idle.shift()!;
      old.close();
      sessions.delete(old.run);
    }
    s = new Session(d.run, model, d.spec, { data: o.data ? path.resolve(o.data) : undefined, backbone }, d.sweep);
    sessions.set(d.run, s);
    return s;
  };

  const processShard = async (job: Job<ShardData, ShardResult>): Promise<ShardResult> => {
    const d = job.data;
    if (d.protocol !== PROTOCOL || d.hopscope !== HOPSCOPE_VERSION)
      throw new InputError(`shard ${job.id} was made by hopscope ${d.hopscope} (protocol ${d.protocol}); this worker is ${HOPSCOPE_VERSION} (protocol ${PROTOCOL}): run one version on coordinator and workers`);
    // The queue name already carries both hashes; checked again so a hand-made job cannot slip through.
    if (d.model !== modelHash) throw new InputError(`shard ${job.id} is for model ${d.model.slice(0, 16)}; this worker holds ${modelDir} (${modelHash.slice(0, 16)})`);
    if (d.data !== dataHash) throw new InputError(`shard ${job.id} is for data ${d.data.slice(0, 16)}; this worker holds ${o.data ?? 'no data'} (${dataHash.slice(0, 16)})`);
    let last = 0;
    const res = await sessionFor(d).shard(d.sweep, d.keys, (n) => {
      // Progress is cosmetic (the coordinator's bar): at most a few writes a second.
      const now = Date.now();
      if (n === d.keys.length || now - last > 250) {
        last = now;
        void job.updateProgress(n).catch(() => {});
      }
    });
    completed++;
    return { ...res, worker: name };
  };

  const leaseMs = o.leaseMs ?? 30_000;
  const worker = new Worker<ShardData, ShardResult>(queueName(modelHash, dataHash), processShard, {
    connection: conn,
    prefix: KEY_PREFIX,
    concurrency: o.concurrency ?? 1,
    name,
    lockDuration: leaseMs,
    stalledInterval: Math.max(1000, Math.floor(leaseMs / 2)),
    // A shard that stalls twice (two workers died on it) is failed with BullMQ's message rather than looping.
    maxStalledCount: 2,
  });
  worker.on('error', (e) => log(`hopscope worker: ${e.message}`));
  worker.on('failed', (job, e) => log(`hopscope worker: shard ${job?.id} failed (attempt ${job?.attemptsMade}): ${e.message}`));
  await worker.waitUntilReady();
  log(`hopscope worker ${name}: model ${modelDir} (${modelHash.slice(0, 12)}), data ${o.data ?? 'none'} (${dataHash.slice(0, 12)}), queue ${queueName(modelHash, dataHash)} on ${redactUrl(o.queue)}`);
  return {
    name,
    queueName: queueName(modelHash, dataHash),
    modelHash,
    dataHash,
    get completed() {
      return completed;
    },
    async close() {
      await worker.close();
      for (const s of sessions.values()) s.close();
      await Promise.all([...sessions.values()].map((s) => s.done));
      sessions.clear();
      backbone?.dispose();
      model.dispose();
      conn.disconnect();
    },
  };
}
