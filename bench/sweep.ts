// The sweep scheduler vs the naive sweep, measured in the same run: a cross-patching-style layer sweep
// (donor image states written at the image positions of a target, one layer at a time, last-position
// logits) on a 12-layer LLaVA-shaped model with random weights built in memory. Naive = one full forward
// (vision tower included) per (target, layer); scheduled = clean states cached once, each run started at
// its layer, runs stacked 8 to a forward. Prints both times, the ratio (target >= 3x) and the max diff.
//   node --import tsx bench/sweep.ts [--targets 6] [--layers 12] [--d 256] [--batch 8] [--generate 0]
import * as tf from '@tensorflow/tfjs-core';
import { describeEngine, initEngine, shutdownEngine } from '../src/engine/backend';
import type { LlavaModel } from '../src/models/llava/model';
import { mulberry32 } from '../src/data/random';
import { rawSource, type RawPrompts } from '../src/experiments/sources/raw';
import { cleanStates, sweep, type PatchJob } from '../src/experiments/scheduler';
import { IMG, randomModel } from './sweep-model';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

const LAYERS = arg('layers', 12);
const D = arg('d', 256);
const TARGETS = arg('targets', 6);
const BATCH = arg('batch', 8);
const GENERATE = arg('generate', 0);
function prompts(model: LlavaModel): RawPrompts {
  const rng = mulberry32(11);
  const tokens = model.tokensPerImage;
  const n = 3 * 56 * 56;
  const images: RawPrompts['images'] = {};
  const out: RawPrompts['prompts'] = [];
  const entities = Array.from({ length: TARGETS }, (_, i) => {
    images[`i${i}`] = { shape: [1, 3, 56, 56], data: Float32Array.from({ length: n }, () => rng() * 2 - 1) };
    out.push({ entity: `e${i}`, role: 'identify', modality: 'image', inputIds: [1, 10, 11, 12, ...new Array(tokens).fill(IMG), 20, 21, 22, 23, 24, 25, 26, 27], image: `i${i}` });
    return { key: `e${i}`, subject: `tok${100 + i}`, type: 'celebs' };
  });
  return { format: 'hopscope-prompts', version: 1, imageTokenId: IMG, entities, images, prompts: out };
}

async function main(): Promise<void> {
  const engine = await initEngine();
  const model = randomModel({ layers: LAYERS, d: D });
  const source = rawSource(prompts(model));
  const cases = source.entities().map((e) => source.identification(e)!);
  console.log(`${describeEngine(engine)}; model: ${LAYERS} layers, d_model ${D}, ${model.tokensPerImage} image tokens, prompt ${cases[0].inputIds.length} tokens`);
  console.log(`sweep: ${TARGETS} targets x ${LAYERS} layers = ${TARGETS * LAYERS} patched runs${GENERATE ? `, ${GENERATE} generated tokens each` : ''}`);
  const jobsFor = (set: Awaited<ReturnType<typeof cleanStates>>, cs = cases): PatchJob[] =>
    cs.flatMap((c, t) => {
      const target = set.where.get(c.id)!;
      const donor = set.where.get(cs[(t + 1) % cs.length].id)!;
      return Array.from({ length: LAYERS }, (_, l) => ({
        key: `${t}/${l}`,
        clean: target.clean,
        row: target.row,
        generate: GENERATE,
        interventions: [{ kind: 'patch' as const, layers: [l], at: 'image', source: { cache: 'donor', row: donor.row } }],
        sources: { donor: donor.clean.source },
      }));
    });
  const toRows = (o: { lastLogits: Float32Array }) => [{ logits: Array.from(o.lastLogits) }];
  // Warm-up (kernel compilation, allocator) outside the timings.
  {
    const few = cases.slice(0, 2);
    const set = await cleanStates(model, source, few, BATCH);
    await sweep(model, jobsFor(set, few).slice(0, 2), { batchSize: BATCH, toRows });
    await sweep(model, jobsFor(set, few).slice(0, 1), { batchSize: 1, naive: true, toRows });
    set.dispose();
  }
  let t0 = performance.now();
  const setN = await cleanStates(model, source, cases, BATCH);
  const naive = await sweep(model, jobsFor(setN), { batchSize: 1, naive: true, toRows });
  const naiveMs = performance.now() - t0;
  setN.dispose();
  const scheduled = async (donorPrefix: boolean) => {
    const t = performance.now();
    const set = await cleanStates(model, source, cases, BATCH);
    const rows = await sweep(model, jobsFor(set), { batchSize: BATCH, toRows, donorPrefix });
    const ms = performance.now() - t;
    set.dispose();
    let diff = 0;
    rows.forEach((r, i) => {
      const a = r.logits as number[];
      const b = naive[i].logits as number[];
      for (let k = 0; k < a.length; k++) diff = Math.max(diff, Math.abs(a[k] - b[k]));
    });
    return { ms, diff };
  };
  const layersOnly = await scheduled(false);
  const full = await scheduled(true);
  console.log(`naive sweep:                         ${naiveMs.toFixed(0)} ms (${(naiveMs / naive.length).toFixed(1)} ms per run)`);
  console.log(`scheduled, start at layer + stacking: ${layersOnly.ms.toFixed(0)} ms  ${(naiveMs / layersOnly.ms).toFixed(2)}x  max |logit diff| ${layersOnly.diff.toExponential(2)}`);
  console.log(`scheduled, + donor prefix reuse:      ${full.ms.toFixed(0)} ms  ${(naiveMs / full.ms).toFixed(2)}x  max |logit diff| ${full.diff.toExponential(2)}`);
  console.log(`speed-up: ${(naiveMs / full.ms).toFixed(2)}x (target >= 3x; clean states included in the scheduled times)`);
  model.dispose();
  console.log(`tensors left: ${tf.memory().numTensors}`);
  shutdownEngine();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
