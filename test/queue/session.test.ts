// The worker's replay of a spec, without Redis: shards of the parked sweep give the single-process rows of
// their keys, keys the spec does not make and sweeps it does not have fail with messages, and closing the
// session frees every tensor the replay held (its clean states).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { loadModelWithAssets, runExperiment, sweep, type Row } from '../../src/experiments';
import type { Model } from '../../src/models/model';
import { Session } from '../../src/queue/session';
import { DATA, MODEL } from './cluster';

const SPEC = { kind: 'cross-patch', version: 1, limit: 2, donorsPerTarget: 1, identifiedOnly: false, maxNewTokens: 3, batchSize: 2, layers: [0, 3, 5] };

describe('queue: a worker session replays the spec and serves shards of its sweep', () => {
  let model: Model;
  const reference = new Map<string, Row[]>();

  before(async () => {
    await initEngine({ threads: 1 });
    model = loadModelWithAssets(MODEL);
    await runExperiment(SPEC, { model, data: DATA, executor: (m, jobs, o) => sweep(m, jobs, { ...o, onRows: (rows, job) => reference.set(job.key, rows) }) });
  });

  after(() => {
    model?.dispose();
    shutdownEngine();
  });

  it('gives the local rows per key, refuses unknown keys and missing sweeps, and frees its tensors', async () => {
    const keys = [...reference.keys()];
    assert.equal(keys.length, 6, '2 pairs x 3 layers');
    const baseline = tf.memory().numTensors;
    const s = new Session('run', model, SPEC, { data: DATA }, 0);
    const seen: number[] = [];
    const a = await s.shard(0, [keys[4], keys[1]], (n) => seen.push(n));
    assert.deepEqual(Object.keys(a.rows).sort(), [keys[1], keys[4]].sort());
    assert.deepEqual(a.rows[keys[4]], reference.get(keys[4]));
    assert.deepEqual(a.rows[keys[1]], reference.get(keys[1]));
    assert.deepEqual(seen, [1, 2]);
    // A second shard of the same sweep is served by the same replay.
    const b = await s.shard(0, keys.slice(2, 4), () => {});
    for (const k of keys.slice(2, 4)) assert.deepEqual(b.rows[k], reference.get(k));
    assert.ok(tf.memory().numTensors > baseline, 'the parked replay holds its clean states');
    await assert.rejects(s.shard(0, ['nobody|nobody|0'], () => {}), /job key "nobody\|nobody\|0" is not one of the 6 patch jobs that sweep 0 of this spec makes on this worker/);
    assert.equal(s.canServe(0), true);
    // cross-patch makes one sweep: asking for a second releases the first and reports what the replay made.
    await assert.rejects(s.shard(1, [keys[0]], () => {}), /the experiment made only 1 patch sweep\(s\) on this worker, not sweep 1/);
    assert.equal(s.canServe(0), false, 'a finished replay serves nothing');
    s.close();
    await s.done;
    assert.equal(tf.memory().numTensors, baseline, 'every tensor of the replay is freed');
  });
});
