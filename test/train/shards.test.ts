// Sharded steps (src/train/shards.ts): the batch split by rows, the gradients met at a barrier, and the same
// weights whether one process computes every shard or two share them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { generateToyworld } from '../../src/data/toyworld';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import type { HostTensor } from '../../src/train/params';
import { ShardGroup, shardRows } from '../../src/train/shards';
import { trainingEngine, trainTeachingModel, type TeachingRecipe } from '../../src/train/teaching';

let tmp: string;
let dataDir: string;

// The shipped recipes' shape at toy size: span twins, align-only grounding at block 1, a readout from block 1.
const SHARDED: Partial<TeachingRecipe> = {
  lm: { d: 16, layers: 2, heads: 2, inter: 32, ropeTheta: 10000, eps: 1e-5 },
  vit: { patch: 8, d: 16, layers: 2, heads: 2, inter: 32, eps: 1e-5 },
  featureLayer: -1,
  extraViews: 1,
  lmNameFirst: 'span',
  stages: {
    lm: { steps: 4, batch: 16, lr: 3e-3, warmup: 1, shards: 2 },
    vision: { steps: 3, batch: 16, lr: 2e-3, warmup: 1, shards: 2 },
    align: { steps: 3, batch: 8, lr: 2e-3, warmup: 1, shards: 2 },
    instruct: { steps: 3, batch: 8, lr: 1e-3, warmup: 1 },
    ground: { steps: 4, batch: 8, lr: 3e-3, warmup: 1, shards: 2 },
    readout: { steps: 4, batch: 8, lr: 1e-3, warmup: 1, shards: 2 },
  },
  ground: { layer: 1, weight: 1, vit: 'train', positions: 'span', tokenLoss: false },
  readout: { from: 1, mix: { identification: 2, visualQa: true, visualCot: false, textReplay: true } },
};

const bytesOf = (v: HostTensor): Buffer => Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength);

before(async () => {
  // One thread, the kernels the shipped recipes name where they run (else stock): what a replica starts too.
  await initEngine(trainingEngine('builtin', 1)).catch(() => initEngine(trainingEngine('stock', 1)));
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-shards-'));
  dataDir = path.join(tmp, 'world');
  generateToyworld({ seed: 7, outDir: dataDir, entitiesPerType: 4, viewsPerEntity: 3, imageSize: 16, heldoutPerEntity: 2 });
});

after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  shutdownEngine();
});

describe('sharded training steps', () => {
  test('a batch splits into contiguous row shards: arrays, and objects of per-row arrays', () => {
    assert.deepEqual(shardRows([1, 2, 3, 4, 5], 0, 2), { part: [1, 2], rows: 2 });
    assert.deepEqual(shardRows([1, 2, 3, 4, 5], 1, 2), { part: [3, 4, 5], rows: 3 });
    const b = { ids: [[1], [2], [3]], targets: [[4], [5], [6]], entities: undefined, rows: [7, 8, 9] };
    assert.deepEqual(shardRows(b, 1, 2), { part: { ids: [[2], [3]], targets: [[5], [6]], rows: [8, 9] }, rows: 2 });
    assert.throws(() => shardRows({ ids: [[1], [2]], targets: [[1]] }, 0, 2), /per-row arrays differ in length \(2, 1\)/);
    assert.throws(() => shardRows({ ids: [[1]], n: 3 }, 0, 2), /field n is not a per-row array/);
  });

  test('the combined gradient is the rows-weighted mean of the shards, and a failed process stops the others with its message', () => {
    const g = ShardGroup.create(2, 1, 3);
    g.start(7);
    g.slot(7, 0).set([1, 2, 3]);
    g.put(7, 0, 0.5, 1);
    g.slot(7, 1).set([4, 8, 0]);
    g.put(7, 1, 2, 3);
    const out = new Float32Array(3);
    const loss = g.combine(7, out);
    assert.deepEqual([...out], [0.25 * 1 + 0.75 * 4, 0.25 * 2 + 0.75 * 8, 0.25 * 3].map(Math.fround));
    assert.equal(loss, 0.25 * 0.5 + 0.75 * 2);
    assert.throws(() => g.combine(9, out), /reached step 9 but the group is at 8/);

    // Two workers: rank 1 fails; rank 0, at the barrier, says so with rank 1's message.
    const two = ShardGroup.create(2, 2, 3);
    two.start(0);
    ShardGroup.join(two.handle(1)).fail('replica: out of memory');
    assert.throws(() => two.combine(0, out), /stopped at step 0, worker 1 of 2: replica: out of memory/);
    // No failure, no partner: a timeout, not a hang.
    const lonely = new ShardGroup(ShardGroup.create(2, 2, 3).buffer, 2, 2, 0, 3, 50);
    lonely.start(0);
    assert.throws(() => lonely.combine(0, out), /no word from the other workers for 0.05 s at step 0/);
    assert.throws(() => ShardGroup.create(2, 3, 3), /workers must be 1..2/);
  });

  test('one process or two: the same weights for every stage, other weights than unsharded, no tensors left', async () => {
    const base = tf.memory().numTensors;
    const run = (dir: string, workers: number, recipe = SHARDED) => trainTeachingModel({ seed: 5, dataDir, runDir: path.join(tmp, dir), recipe, workers });
    const one = await run('w1', 1);
    const two = await run('w2', 2);
    assert.deepEqual([...one.params.keys()].sort(), [...two.params.keys()].sort());
    for (const [k, v] of one.params) assert.ok(bytesOf(v).equals(bytesOf(two.params.get(k)!)), `${k} differs between 1 and 2 workers`);
    for (const stage of ['lm', 'vision', 'align', 'ground', 'readout']) {
      const losses = (dir: string) => (JSON.parse(fs.readFileSync(path.join(tmp, dir, stage, 'state.json'), 'utf8')) as { losses: number[] }).losses;
      assert.deepEqual(losses('w2'), losses('w1'), `${stage} losses`);
      assert.equal(losses('w1').length, SHARDED.stages![stage as 'lm'].steps);
    }
    // The replica wrote nothing of its own: the run folders hold the same files.
    const files = (dir: string) => fs.readdirSync(path.join(tmp, dir), { recursive: true }).map(String).sort();
    assert.deepEqual(files('w2'), files('w1'));
    const unsharded = Object.fromEntries(Object.entries(SHARDED.stages!).map(([k, { shards: _s, ...r }]) => [k, r]));
    const plain = await run('w0', 2, { ...SHARDED, stages: unsharded as TeachingRecipe['stages'] });
    assert.ok([...one.params].some(([k, v]) => k.startsWith('lm.') && !bytesOf(v).equals(bytesOf(plain.params.get(k)!))), 'shards changed nothing: the batch was not split');
    assert.equal(tf.memory().numTensors, base);
  });

  test('a sharded stage interrupted and resumed on two workers ends where an uninterrupted one does', async () => {
    const runDir = path.join(tmp, 'resume');
    const first = await trainTeachingModel({ seed: 5, dataDir, runDir, recipe: SHARDED, workers: 2, stopAt: { stage: 'ground', step: 2 } });
    assert.equal(first.stoppedEarly, true);
    const done = await trainTeachingModel({ seed: 5, dataDir, runDir, recipe: SHARDED, workers: 2 });
    const whole = await trainTeachingModel({ seed: 5, dataDir, runDir: path.join(tmp, 'whole'), recipe: SHARDED, workers: 1 });
    for (const [k, v] of whole.params) assert.ok(bytesOf(v).equals(bytesOf(done.params.get(k)!)), `${k} differs after resuming`);
  });

  test('a recipe with more shards than rows, or a fraction, is refused before anything trains', async () => {
    const bad = (shards: number) => trainTeachingModel({ seed: 5, dataDir, runDir: path.join(tmp, `bad-${shards}`), recipe: { ...SHARDED, stages: { ...SHARDED.stages!, lm: { ...SHARDED.stages!.lm, shards } } } });
    await assert.rejects(bad(17), /recipe.stages.lm.shards 17: expected an integer 1..batch \(16\)/);
    await assert.rejects(bad(1.5), /recipe.stages.lm.shards 1.5/);
    assert.equal(fs.existsSync(path.join(tmp, 'bad-17', 'lm')), false);
  });
});
