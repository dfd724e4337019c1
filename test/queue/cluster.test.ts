// A real cluster on one machine: redis-server on 127.0.0.1, three `hopscope worker` processes and a
// `hopscope run --queue` coordinator on a cross-patching sweep of the teaching model. One worker is
// SIGKILLed while it holds a shard, the coordinator is SIGKILLed and started again; the table must equal
// the single-process run's row for row. Then a shard with a job the spec does not make fails after its
// tries with the worker's message while every other shard's rows arrive.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as aq from 'arquero';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { loadModelWithAssets, runExperiment, validateSpec, writeTable, type PatchJob } from '../../src/experiments';
import type { Model } from '../../src/models/model';
import { Queue } from 'bullmq';
import { KEY_PREFIX, QueueRun, startWorker } from '../../src/queue';
import { HOPSCOPE_VERSION, PROTOCOL, type ShardData } from '../../src/queue/protocol';
import { DATA, MODEL, hopscope, startWorkerProcess, tableDiff, testQueue, until, type Child } from './cluster';
import { redisMissing, startRedis, type RedisServer } from './redis';

// 3 targets x up to 2 donors x the model's layers (8): about 48 patch jobs (the seeded sample decides how many donor pairs
// exist; JOBS is read off the local run), at most 2 per shard: enough shards to kill things mid-run.
const SPEC = { kind: 'cross-patch', version: 1, limit: 3, donorsPerTarget: 2, identifiedOnly: false, maxNewTokens: 4, batchSize: 2 };
const LEASE_S = 3;
const missing = redisMissing();

describe('queue: a sweep over three workers and a coordinator', { skip: missing ?? undefined, timeout: 900_000 }, () => {
  let redis: RedisServer;
  let model: Model;
  let tmp: string;
  let reference: aq.ColumnTable;
  let localSummary: Record<string, unknown>;
  let JOBS = 0;
  const workers: (Child & { name: string })[] = [];

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-queue-'));
    redis = await startRedis();
    await initEngine({ threads: 1 });
    model = loadModelWithAssets(MODEL);
    // The single-process run, written and read back as the coordinator's table will be.
    const local = await runExperiment(SPEC, { model, data: DATA });
    const files = writeTable(local.table, path.join(tmp, 'local'));
    reference = aq.fromCSV(fs.readFileSync(files.csv, 'utf8'));
    localSummary = JSON.parse(JSON.stringify(local.summary));
    JOBS = reference.numRows();
    assert.ok(JOBS >= 24 && JOBS % model.numLayers === 0, `the local sweep has ${JOBS} patch jobs: whole pairs of ${model.numLayers} layers, enough to kill things mid-run`);
    workers.push(...(await Promise.all([0, 1, 2].map(() => startWorkerProcess(redis.url, LEASE_S)))));
  });

  after(async () => {
    // SIGTERM: a worker finishes its running shard and leaves; the exit hook in redis.ts SIGKILLs stragglers.
    const live = workers.filter((w) => w.proc.exitCode === null && w.proc.signalCode === null);
    live.forEach((w) => w.proc.kill('SIGTERM'));
    await Promise.race([Promise.all(live.map((w) => w.exited)), new Promise((r) => setTimeout(r, 20_000).unref())]);
    model?.dispose();
    shutdownEngine();
    await redis?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('loses nothing and doubles nothing when a worker and the coordinator are killed mid-run', async () => {
    const specFile = path.join(tmp, 'spec.json');
    fs.writeFileSync(specFile, JSON.stringify(SPEC));
    const out = path.join(tmp, 'queued');
    const args = ['run', specFile, '--model', MODEL, '--data', DATA, '--out', out, '--queue', redis.url, '--shard-size', '2', '--no-progress'];
    const q = testQueue(redis.url);
    try {
      let coord = hopscope(args);
      // A worker that holds a shard while at least one shard is done: SIGKILL it there. It is stopped (SIGSTOP)
      // first and the shard checked still active, else it could finish the shard between the look and the kill
      // (shards are fast: a run once returned the victim's own result for "the killed shard").
      const victim = await until('a worker stopped while it holds a shard, after one shard completed', async () => {
        if (coord.proc.exitCode !== null) throw new Error(`coordinator exited early:\n${coord.log()}`);
        if ((await q.getCompletedCount()) < 1) return undefined;
        for (const job of await q.getActive()) {
          const w = workers.find((x) => x.name === job.processedBy && x.proc.exitCode === null);
          if (!w) continue;
          w.proc.kill('SIGSTOP');
          const now = await q.getJob(job.id!);
          if (now && !now.finishedOn && (await now.getState()) === 'active') return { worker: w, shard: job.id! };
          w.proc.kill('SIGCONT'); // it finished that shard before it stopped: look again
        }
        return undefined;
      });
      victim.worker.proc.kill('SIGKILL');
      await victim.worker.exited;
      const doneAtKill = await q.getCompletedCount();
      const checkpointed = () => (fs.existsSync(path.join(out, 'rows.jsonl')) ? fs.readFileSync(path.join(out, 'rows.jsonl'), 'utf8').trim().split('\n').length : 0);
      await until('one more shard after the kill, and rows in the checkpoint', async () => (await q.getCompletedCount()) > doneAtKill && checkpointed() > 0);
      coord.proc.kill('SIGKILL');
      await coord.exited;
      const total = async () => Object.values(await q.getJobCounts()).reduce((a, b) => a + b, 0);
      // Shards are cut inside stacking groups, so their number depends on the sampled pairs (at least JOBS / 2
      // at 2 jobs a shard). Shard ids are content-addressed: if the first coordinator enqueued every shard, the
      // restarted one adds none (checked after it finishes).
      const enqueuedAtKill = await total();
      assert.ok(enqueuedAtKill >= JOBS / 2, `${enqueuedAtKill} shards enqueued for ${JOBS} jobs of at most 2 a shard`);

      coord = hopscope(args);
      const code = await coord.exited;
      assert.equal(code, 0, `the restarted coordinator failed:\n${coord.log()}`);
      assert.equal(await total(), enqueuedAtKill, 'the first coordinator enqueued every shard before it was killed');

      const table = aq.fromCSV(fs.readFileSync(path.join(out, 'table.csv'), 'utf8'));
      assert.equal(tableDiff(reference, table), null, 'the queued table equals the single-process table row for row');
      const keys = (table.objects() as { pair: number; layer: number }[]).map((r) => `${r.pair}/${r.layer}`);
      assert.equal(new Set(keys).size, JOBS, 'no (pair, layer) twice, none missing');
      const arrow = aq.fromArrow(fs.readFileSync(path.join(out, 'table.arrow')));
      assert.equal(arrow.numRows(), JOBS);

      const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
      assert.deepEqual(summary.summary, localSummary, 'the summary is computed as the local run computes it');
      assert.deepEqual(summary.queue.failed, []);
      // The restart resumed: shards finished before it came back were taken from its checkpoint or the queue, not rerun.
      assert.ok(summary.queue.fromCheckpoint > 0, JSON.stringify(summary.queue));
      assert.ok(summary.queue.shards < enqueuedAtKill, `the restarted coordinator waited only on the shards not in its checkpoint: ${summary.queue.shards} of ${enqueuedAtKill}`);

      // The killed worker's shard was taken over after its lease and finished by another worker.
      const shard = await q.getJob(victim.shard);
      assert.ok(shard?.finishedOn && shard.returnvalue, 'the killed shard completed');
      assert.notEqual(shard!.returnvalue.worker, victim.worker.name);
      assert.equal(await q.getCompletedCount(), enqueuedAtKill, 'every shard completed once in the queue');
    } finally {
      await q.close();
    }
  });

  it('fails a bad shard after its tries with the worker\'s message; the other rows arrive', async () => {
    const live = workers.filter((w) => w.proc.exitCode === null && w.proc.signalCode === null);
    assert.ok(live.length >= 1);
    const spec = validateSpec(SPEC);
    const run = await QueueRun.open({ queue: redis.url, spec, model: MODEL, data: DATA, shardSize: 5, attempts: 2, pollMs: 200 });
    let good: PatchJob[] = [];
    try {
      const result = await runExperiment(spec, {
        model,
        data: DATA,
        executor: (m, jobs, o) => {
          good = [...jobs];
          // A job the spec does not make (as a tampered or mismatched shard would carry).
          const bad: PatchJob = { ...jobs[jobs.length - 1], key: 'no-such-target|donor|3' };
          return run.executor(m, [...jobs, bad], o);
        },
      });
      const failed = run.report.failed;
      assert.equal(failed.length, 1, JSON.stringify(failed));
      assert.ok(failed[0].keys.includes('no-such-target|donor|3'));
      assert.match(failed[0].error, new RegExp(`job key "no-such-target\\|donor\\|3" is not one of the ${JOBS} patch jobs that sweep 0 of this spec makes`));
      assert.equal(failed[0].attempts, 2, 'bounded retries');
      // Every job outside the failed shard has its single-process row; the failed shard's are missing, not invented.
      const lost = new Set(failed[0].keys);
      const refRows = reference.objects() as Record<string, unknown>[];
      const want = aq.from(good.flatMap((j, i) => (lost.has(j.key) ? [] : [refRows[i]])));
      const got = aq.fromCSV(result.table.toCSV());
      assert.equal(tableDiff(want, got), null);
      assert.ok(got.numRows() >= JOBS - 4, `at most the failed shard's other jobs are missing: ${got.numRows()} rows`);
    } finally {
      await run.close();
    }
  });

  it('a worker with other data listens elsewhere, and refuses a hand-made shard for other weights', async () => {
    // No --data: its data hash is "none", so its queue is not the run's.
    const w = await startWorker({ queue: redis.url, model: MODEL, leaseMs: 5000, log: () => {} });
    const runQueue = testQueue(redis.url);
    const u = new URL(redis.url);
    const q = new Queue<ShardData>(w.queueName, { prefix: KEY_PREFIX, connection: { host: u.hostname, port: Number(u.port) } });
    try {
      assert.notEqual(w.queueName, runQueue.name);
      const data: ShardData = { protocol: PROTOCOL, hopscope: HOPSCOPE_VERSION, run: 'r', spec: SPEC, model: 'f'.repeat(64), data: 'none', sweep: 0, keys: ['k'] };
      const job = await q.add('hand-made', data, { attempts: 1 });
      const failed = await until('the hand-made shard to fail', async () => ((await job.isFailed()) ? q.getJob(job.id!) : undefined));
      // The worker names the folder it holds (the default teaching model) and its content hash.
      const held = MODEL.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      assert.match(failed!.failedReason, new RegExp(`is for model ffffffffffffffff; this worker holds ${held} \\([0-9a-f]{16}\\)`));
      assert.equal(w.completed, 0, 'it ran nothing');
    } finally {
      await q.close();
      await runQueue.close();
      await w.close();
    }
  });
});
