// Strict weight loading in both directions: a checkpoint whose config.json says fewer layers than it holds, or
// more, or whose layers are misnumbered, fails with one CheckpointError naming the missing and the unexpected
// tensors together (issue 13: extra layers used to load silently).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { CheckpointError } from '../../src/errors';
import { openCheckpoint } from '../../src/io/checkpoint';
import { CausalLM } from '../../src/models/causal-lm';
import { checkpointSource, loadModelFromDir } from '../../src/models/load';
import type { WeightSource } from '../../src/models/weights';
import { FIXTURES } from '../fixtures/paths';

const FIXTURE = path.join(FIXTURES, 'llama_tiny_C');
const config = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'config.json'), 'utf8')) as Record<string, unknown>;
const L = Number(config.num_hidden_layers);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-weights-'));
before(() => initEngine());
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  shutdownEngine();
});

/** The fixture's files with config.json edited. */
function withConfig(name: string, edit: Record<string, unknown>): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  for (const f of fs.readdirSync(FIXTURE)) if (f !== 'config.json') fs.symlinkSync(path.join(FIXTURE, f), path.join(dir, f));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, ...edit }));
  return dir;
}

function rejects(load: () => unknown, expect: RegExp[], absent: RegExp[] = []): void {
  assert.throws(load, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `not a CheckpointError: ${String(e)}`);
    for (const r of expect) assert.match(e.message, r);
    for (const r of absent) assert.doesNotMatch(e.message, r);
    return true;
  });
}

test(`a checkpoint with ${L} layers whose config says ${L - 1}: the extra layer's tensors are unexpected`, () => {
  rejects(() => loadModelFromDir(withConfig('fewer', { num_hidden_layers: L - 1 })), [
    /weights do not match config\.json/,
    new RegExp(`unexpected tensor model\\.layers\\.${L - 1}\\.self_attn\\.q_proj\\.weight`),
  ], [/missing tensor/]);
});

test(`a checkpoint with ${L} layers whose config says ${L + 1}: the last layer's tensors are missing`, () => {
  rejects(() => loadModelFromDir(withConfig('more', { num_hidden_layers: L + 1 })), [/\(9 missing, 0 unexpected/, new RegExp(`missing tensor model\\.layers\\.${L}\\.input_layernorm\\.weight`)], [/unexpected tensor/]);
});

test('a misnumbered layer: missing and unexpected tensors in one error', () => {
  const ckpt = openCheckpoint(FIXTURE);
  try {
    const src = checkpointSource(ckpt);
    // Layer 1 saved under the name of layer 7.
    const out = (n: string) => n.replace('model.layers.1.', 'model.layers.7.');
    const back = (n: string) => n.replace('model.layers.7.', 'model.layers.1.');
    const renamed: WeightSource = {
      origin: src.origin,
      names: () => src.names().map(out),
      shape: (n) => (n.startsWith('model.layers.1.') ? undefined : src.shape(back(n))),
      f32: (n, t) => src.f32(back(n), t),
    };
    rejects(() => CausalLM.load(renamed, config), [/missing tensor model\.layers\.1\.input_layernorm\.weight/, /unexpected tensor model\.layers\.7\./]);
  } finally {
    ckpt.close();
  }
});

test('the matching checkpoint loads', () => {
  loadModelFromDir(FIXTURE).dispose();
});

test('a fused linear is the transposed parts side by side, read straight into one tensor; parts that cannot fuse are a CheckpointError', async () => {
  const tf = await import('@tensorflow/tfjs-core');
  const { memorySource, readFusedLinear } = await import('../../src/models/weights');
  const part = (out: number, inDim: number, seed: number) => ({ shape: [out, inDim], data: Float32Array.from({ length: out * inDim }, (_, i) => seed + i * 0.25) });
  const src = memorySource('mem', new Map([['q', part(3, 4, 1)], ['k', part(2, 4, 100)], ['v', part(5, 4, 200)], ['bad', part(2, 3, 0)]]));
  const before = tf.memory().numTensors;
  const fused = readFusedLinear(src, ['q', 'k', 'v']);
  const want = tf.tidy(() => tf.concat(['q', 'k', 'v'].map((n) => tf.tensor2d(src.f32(n), src.shape(n) as [number, number]).transpose()), 1));
  assert.deepEqual(fused.shape, [4, 10]);
  assert.deepEqual(Array.from(fused.dataSync()), Array.from(want.dataSync()));
  tf.dispose([fused, want]);
  assert.throws(() => readFusedLinear(src, ['q', 'bad']), (e: unknown) => e instanceof CheckpointError && /bad has shape \[2,3\]; fused with q it must be \[out, 4\]/.test((e as Error).message));
  assert.throws(() => readFusedLinear(src, ['q', 'nope']), /missing tensor nope/);
  assert.equal(tf.memory().numTensors, before);
});
