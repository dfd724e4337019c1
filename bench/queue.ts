// Queue throughput on this machine: one cross-patching sweep of the teaching model run in-process, then
// through redis-server with 1 and with 2 `hopscope worker` processes (one wasm thread each). Reports the
// sweep's wall time each way, the 2-vs-1 worker ratio, and the queue's overhead per shard and per patch job:
// the sweep's wall time with one worker minus what the worker spent computing (and replaying the spec's
// prefix), over the shards. Run: nice -n 10 node --import tsx bench/queue.ts [--limit N] [--shard-size N]
import * as os from 'node:os';
import { initEngine, shutdownEngine } from '../src/engine/backend';
import { loadModelWithAssets, runExperiment, sweep, validateSpec } from '../src/experiments';
import { runQueued } from '../src/queue';
import { DATA, MODEL, startWorkerProcess } from '../test/queue/cluster';
import { redisMissing, startRedis } from '../test/queue/redis';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

async function main() {
  const missing = redisMissing();
  if (missing) throw new Error(missing);
  const limit = arg('--limit', 4);
  const shardSize = arg('--shard-size', 4);
  const spec = validateSpec({ kind: 'cross-patch', version: 1, limit, donorsPerTarget: 2, identifiedOnly: false, maxNewTokens: 4, batchSize: 4 });
  const load0 = os.loadavg();
  await initEngine({ threads: 1 });
  const model = loadModelWithAssets(MODEL);
  let jobs = 0;
  let localMs = 0;
  await runExperiment(spec, {
    model,
    data: DATA,
    executor: async (m, js, o) => {
      jobs = js.length;
      const t = performance.now();
      const rows = await sweep(m, js, o);
      localMs = performance.now() - t;
      return rows;
    },
  });
  const queued: Record<number, { sweepMs: number; shards: number; computeMs: number; replayWaitMs: number }> = {};
  for (const n of [1, 2]) {
    // A fresh Redis per round: the same spec's shards are content-addressed and would be reused otherwise.
    const redis = await startRedis();
    const workers = await Promise.all(Array.from({ length: n }, () => startWorkerProcess(redis.url, 30)));
    try {
      const r = await runQueued(spec, { model, data: DATA, queue: redis.url, shardSize, pollMs: 50 });
      queued[n] = { sweepMs: r.queue.sweepMs, shards: r.queue.shards, computeMs: r.queue.computeMs, replayWaitMs: r.queue.replayWaitMs };
    } finally {
      workers.forEach((w) => w.proc.kill('SIGTERM'));
      await Promise.all(workers.map((w) => w.exited));
      await redis.stop();
    }
  }
  model.dispose();
  shutdownEngine();
  const q1 = queued[1];
  const overheadMs = q1.sweepMs - q1.computeMs - q1.replayWaitMs;
  console.log(
    JSON.stringify(
      {
        patchJobs: jobs,
        shardSize,
        localSweepMs: Math.round(localMs),
        queued,
        ratio2vs1: q1.sweepMs / queued[2].sweepMs,
        overheadPerShardMs: overheadMs / q1.shards,
        overheadPerPatchJobMs: overheadMs / jobs,
        loadAverageBefore: load0,
        loadAverageAfter: os.loadavg(),
      },
      null,
      2,
    ),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
