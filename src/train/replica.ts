// A worker thread that computes its share of a sharded stage's rows (src/train/shards.ts). It starts the
// engine it is handed, rebuilds the stage from the run folder exactly as the training thread built it (same
// weights, same batches, same loss), and meets that thread at every step's barrier. It writes nothing;
// any error is handed to the group, whose other workers stop at their next barrier and report it.
import { workerData } from 'node:worker_threads';
import { initEngine, shutdownEngine } from '../engine/backend';
import { ShardGroup } from './shards';
import { trainTeachingModel, type ReplicaData } from './teaching';

const data = workerData as ReplicaData;
const group = ShardGroup.join(data.opts.replica!.handle);

(async () => {
  try {
    await initEngine(data.engine);
    await trainTeachingModel(data.opts);
  } catch (e) {
    group.fail((e as Error).stack ?? String(e));
    process.exitCode = 1;
  } finally {
    shutdownEngine();
  }
})();
