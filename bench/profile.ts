// `npm run bench:profile [-- --smoke]`: where a forward's time goes (issue 20, deliverable 1). The mid shapes
// of issue 20 (a random LLaVA: CLIP ViT-B/14 at 224 px, 12 layers, d 768; a 12-layer Llama d 1024, GQA 16/8,
// MLP 2816, vocabulary 32000: 295 M parameters; 276 tokens of which 256 image tokens, float32), built in
// process. One forward with its image and issue 20's cross-patching sweep (a donor image's states written over
// the image positions at each of the 12 blocks) through the experiments' scheduler, then naively (one full
// forward per block), and a resume-at-layer sweep that reuses no position (the core API; torch's best), run
// under tf.profile: each kernel's time (the backend's own timer around the
// kernel, so the native BLAS matMul's copies in and out of the wasm heap count as matMul time), calls, bytes
// allocated; "outside kernels" is the wall time no kernel accounts for (JS between kernels, hooks, reads).
// The forward's matmul GFLOP/s is compared with the machine's sgemm roofline measured in the same run
// (numpy + system BLAS, bench/matmul.ts). The last line is machine-readable:
//   profile: forward_s=X roofline_fraction=Y roofline_gflops=R own_gemm_gflops=G own_gemm_fraction=F naive_sweep_s=N sweep_s=Z sweep_forwards=W resume_sweep_forwards=U
//            load_s=L load_rss_ratio=R run_rss_ratio=Q outside_share=V top=Kernel:share,...
// (load_*: bench/load.ts in a child, loading the same shapes from disk and running one forward; --no-load skips it)
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describeEngine, initEngine, shutdownEngine } from '../src/engine/backend';
import { loadAvg, randomArray, rssMb, samplePeak, timeMs } from './lib';
import { rooflineGflops, type MatShape } from './matmul';
import { maxAbsDiff, scheduledSweep } from './sweep-measure';
import { rawSource } from '../src/experiments/sources/raw';
import { cleanStates, sweep, type PatchJob } from '../src/experiments/scheduler';
import type { Model } from '../src/models/model';
import type { PromptCase, PromptSource } from '../src/experiments/source';
import { IMG, MID_SHAPE, imageTokens, parameterCount, randomModel, type BenchShape } from './sweep-model';

const smoke = process.argv.includes('--smoke');

/** Issue 20's mid shapes (--smoke: tiny ones, to check the runner in seconds; numbers mean nothing). */
const MID: BenchShape = smoke
  ? { layers: 4, d: 64, heads: 4, kvHeads: 2, inter: 128, vocab: 1000, vision: { layers: 2, d: 32, heads: 2, inter: 64, imageSize: 28, patch: 7 } }
  : MID_SHAPE;
/** BOS + 256 image tokens + 19 text tokens = issue 20's 276. */
const TEXT_TOKENS = 19;

interface KernelRow {
  name: string;
  calls: number;
  ms: number;
  bytes: number;
}

interface Profiled {
  wallMs: number;
  kernels: KernelRow[];
  /** The same times by kernel and input shapes: which calls of a kernel cost (e.g. which Slice). */
  byShape: KernelRow[];
  peakBytes: number;
}

/** Runs `fn` once under tf.profile; kernel times summed by kernel name, largest first. */
async function profiled(fn: () => void | Promise<void>): Promise<Profiled> {
  const t0 = performance.now();
  const info = await tf.profile(fn as () => Promise<tf.TensorContainer>);
  const wallMs = performance.now() - t0;
  const by = new Map<string, KernelRow>();
  const byShape = new Map<string, KernelRow>();
  for (const k of info.kernels) {
    const shapes = `${k.name} ${k.inputShapes.map((s) => `[${s}]`).join(' ')} → ${k.outputShapes.map((s) => `[${s}]`).join(' ')}`;
    for (const [map, key] of [[by, k.name], [byShape, shapes]] as const) {
      const row = map.get(key) ?? { name: key, calls: 0, ms: 0, bytes: 0 };
      row.calls++;
      row.ms += Number(k.kernelTimeMs) || 0;
      row.bytes += Math.max(0, k.bytesAdded);
      map.set(key, row);
    }
  }
  const sorted = (m: Map<string, KernelRow>) => [...m.values()].sort((a, b) => b.ms - a.ms);
  return { wallMs, kernels: sorted(by), byShape: sorted(byShape), peakBytes: info.peakBytes };
}

function print(title: string, p: Profiled): number {
  const inKernels = p.kernels.reduce((a, k) => a + k.ms, 0);
  const outside = Math.max(0, p.wallMs - inKernels);
  console.log(`## ${title}: ${(p.wallMs / 1000).toFixed(2)} s wall under the profiler, peak ${(p.peakBytes / 2 ** 20).toFixed(0)} MB of tensors`);
  console.log('| kernel | calls | ms | share | MB allocated |');
  console.log('|---|---|---|---|---|');
  for (const k of p.kernels.filter((k) => k.ms >= p.wallMs * 0.002)) {
    console.log(`| ${k.name} | ${k.calls} | ${k.ms.toFixed(0)} | ${((100 * k.ms) / p.wallMs).toFixed(1)}% | ${(k.bytes / 2 ** 20).toFixed(0)} |`);
  }
  const rest = p.kernels.filter((k) => k.ms < p.wallMs * 0.002);
  if (rest.length) console.log(`| ${rest.length} other kernels | ${rest.reduce((a, k) => a + k.calls, 0)} | ${rest.reduce((a, k) => a + k.ms, 0).toFixed(0)} | ${((100 * rest.reduce((a, k) => a + k.ms, 0)) / p.wallMs).toFixed(1)}% | |`);
  console.log(`| outside kernels | | ${outside.toFixed(0)} | ${((100 * outside) / p.wallMs).toFixed(1)}% | |\n`);
  console.log('| costliest calls by input shapes | calls | ms | share |');
  console.log('|---|---|---|---|');
  for (const k of p.byShape.slice(0, 8)) console.log(`| ${k.name} | ${k.calls} | ${k.ms.toFixed(0)} | ${((100 * k.ms) / p.wallMs).toFixed(1)}% |`);
  console.log('');
  return outside / p.wallMs;
}

/** Matmul FLOPs of one forward of `s` with one image and T tokens (the GEMMs and attention products). */
function forwardFlops(s: BenchShape, T: number): number {
  const v = s.vision!;
  const hd = s.d / s.heads!;
  const kv = s.kvHeads! * hd;
  const lm = s.layers * (2 * T * s.d * (2 * s.d + 2 * kv) + 2 * T * 3 * s.d * s.inter! + 4 * T * T * s.d) + 2 * T * s.d * s.vocab!;
  const P = imageTokens(s);
  const V = P + 1; // CLS
  // The feature layer is -2: hopscope runs layers 0..L-2 of the tower.
  const vit = (v.layers - 1) * (2 * V * 4 * v.d * v.d + 2 * V * 2 * v.d * v.inter + 4 * V * V * v.d) + 2 * P * 3 * v.patch * v.patch * v.d;
  const projector = 2 * P * (v.d * s.d + s.d * s.d);
  return lm + vit + projector;
}

/**
 * Issue 20's sweep as an experiment runs it: cross-patching, the donor image's states written over the target's
 * image positions at the input of each block 0..L-1, last-position logits, through the experiments' scheduler
 * (src/experiments/scheduler.ts). Timed from the prompts: both clean states (vision tower included) are part of
 * it. `naive`: one full forward of the image prompt per layer, the baseline every scheduled result must equal.
 */
async function experimentSweep(model: Model, source: PromptSource, cases: PromptCase[], naive: boolean): Promise<{ ms: number; logits: Float32Array[] }> {
  const t0 = performance.now();
  const set = await cleanStates(model, source, cases, 2);
  try {
    const target = set.where.get(cases[0].id)!;
    const donor = set.where.get(cases[1].id)!;
    const jobs: PatchJob[] = Array.from({ length: model.numLayers }, (_, l) => ({
      key: `${l}`,
      clean: target.clean,
      row: target.row,
      interventions: [{ kind: 'patch' as const, layers: [l], at: 'image', source: { cache: 'donor', row: donor.row } }],
      sources: { donor: donor.clean.source },
    }));
    // Results arrive cheapest plan first; kept in block order.
    const logits: Float32Array[] = [];
    await sweep(model, jobs, { batchSize: 8, naive, toRows: (o) => ((logits[Number(o.job.key)] = o.lastLogits), []) });
    return { ms: performance.now() - t0, logits };
  } finally {
    set.dispose();
  }
}

async function main(): Promise<void> {
  const engine = await initEngine();
  // The engine's own decision (HOPSCOPE_NATIVE_MATMUL=off gives the stock path; an explicit enable here once
  // turned the native matMul back on under 'off', so "stock" profiles measured it).
  const nat = engine.nativeMatMul;
  console.log(`# hopscope bench:profile${smoke ? ' (--smoke)' : ''} — ${new Date().toISOString()}`);
  // describeEngine says which matMul runs (native BLAS, or stock with the reason).
  console.log(`engine: ${describeEngine(engine)}${nat.enabled ? `; native matMul ${nat.library}, ${nat.threads} threads` : ''}; load average ${loadAvg()}`);

  const t0 = performance.now();
  const model = randomModel(MID);
  const P = imageTokens(MID);
  const T = 1 + P + TEXT_TOKENS;
  const params = parameterCount(MID);
  console.log(`model: random LLaVA, ${(params / 1e6).toFixed(0)} M parameters loaded: LM ${MID.layers}×d${MID.d}, ViT ${MID.vision!.layers}×d${MID.vision!.d} at ${MID.vision!.imageSize} px; built in ${((performance.now() - t0) / 1000).toFixed(1)} s; T = ${T} (${P} image tokens)\n`);
  samplePeak();

  const ids = [1, ...Array.from({ length: P }, () => IMG), ...Array.from({ length: TEXT_TOKENS }, (_, i) => 3 + ((i * 37) % (MID.vocab! - 4)))];
  const px = MID.vision!.imageSize;
  const pixels = tf.tensor4d(randomArray(3 * px * px, 1, 5), [1, 3, px, px]);
  // A forward ends with the logits on the backend, as torch's does (the reference times `model(**inputs)`, which
  // returns a tensor); what is read back is the last position's row, which greedy decoding and every experiment
  // read. Reading all T x vocab logits (35 MB at the mid shapes) added about 0.15 s of copying (session 17).
  const forward = () => {
    const out = model.forward({ inputIds: [ids], pixelValues: pixels });
    readLast(out.logits!);
    out.dispose();
  };
  forward(); // warm-up: kernels compiled, weights uploaded
  // The median of 5: one forward moved by ±10 % between identical runs on the 2-core VM.
  const times = Array.from({ length: smoke ? 1 : 5 }, () => {
    const f0 = performance.now();
    forward();
    return performance.now() - f0;
  }).sort((a, b) => a - b);
  const forwardMs = times[times.length >> 1];
  samplePeak();
  const fp = await profiled(forward);
  const flops = forwardFlops(MID, T);
  const gflops = flops / (forwardMs * 1e6);
  // The roofline at the forward's dominant GEMM shapes (the LM's at T rows, the tower's at P+1 rows).
  const shapes: MatShape[] = [
    { label: 'lm qkv', m: T, k: MID.d, n: MID.d * 2 },
    { label: 'lm mlp', m: T, k: MID.d, n: MID.inter! },
    { label: 'vit mlp', m: P + 1, k: MID.vision!.d, n: MID.vision!.inter },
  ];
  const roof = rooflineGflops(shapes, engine.threads, true);
  const roofline = Math.max(...roof.values);
  const fraction = gflops / roofline;
  // The engine's own sgemm at the same shapes (the matMul the forward runs): on a CPU where it outruns numpy's BLAS
  // (the built-in GEMM's AVX-512 kernel against Debian's OpenBLAS, session 18), "of the roofline" exceeds 1, and
  // this says how much of its own GEMM's speed the forward keeps.
  // Not read back: a fresh array's first touch costs ~10 us per 4 KB page on this VM (3 MB: ~10 ms), more than the
  // product; the forward reads back one row.
  const own = Math.max(
    ...shapes.map((sh) => {
      const [a, b] = [tf.randomUniform([sh.m, sh.k], -1, 1), tf.randomUniform([sh.k, sh.n], -1, 1)];
      const ms = timeMs(() => tf.matMul(a, b).dispose(), smoke ? 3 : 9);
      tf.dispose([a, b]);
      return (2 * sh.m * sh.k * sh.n) / (ms * 1e6);
    }),
  );
  const ownFraction = gflops / own;
  console.log(`forward: ${(forwardMs / 1000).toFixed(2)} s, ${(flops / 1e9).toFixed(0)} GFLOP of matmuls → ${gflops.toFixed(1)} GFLOP/s; roofline ${Number.isFinite(roofline) ? roofline.toFixed(1) : 'NaN'} GFLOP/s (${roof.note}) → ${Number.isFinite(fraction) ? fraction.toFixed(2) : 'NaN'} of it; the engine's own matMul at those shapes ${own.toFixed(1)} GFLOP/s → ${ownFraction.toFixed(2)} of it\n`);
  const outsideShare = print('one forward (image + text)', fp);

  // The sweep as the experiments run it (issue 20's "best sweep"): cross-patching the donor image's states into
  // the target's image positions at each block, through the experiments' scheduler. A patch over the whole image
  // span, whose tokens before it are the donor's own, makes every position up to the span's end equal the donor's
  // clean run at every later block (src/experiments/plan.ts): a patched run computes only the positions after it.
  const donorPixels = randomArray(3 * px * px, 2, 5);
  const raw = {
    format: 'hopscope-prompts' as const,
    version: 1 as const,
    imageTokenId: IMG,
    entities: [0, 1].map((i) => ({ key: `e${i}`, subject: `tok${100 + i}`, type: 'celebs' })),
    images: { i0: { shape: [1, 3, px, px], data: pixels.dataSync() as Float32Array }, i1: { shape: [1, 3, px, px], data: donorPixels } },
    prompts: [0, 1].map((i) => ({ entity: `e${i}`, role: 'identify' as const, modality: 'image' as const, inputIds: ids, image: `i${i}` })),
  };
  const source = rawSource(raw);
  const cases = source.entities().map((e) => source.identification(e)!);
  await experimentSweep(model, source, cases, false); // warm-up
  const sch = await experimentSweep(model, source, cases, false);
  const nai = await experimentSweep(model, source, cases, true);
  const sweepMs = sch.ms;
  const naiveMs = nai.ms;
  const sweepDiff = maxAbsDiff(sch.logits, nai.logits);
  const scale = Math.max(...nai.logits.map((r) => r.reduce((a, x) => Math.max(a, Math.abs(x)), 0)));
  console.log(`cross-patching sweep through the experiments' scheduler (donor image states at the ${P} image positions, blocks 0..${MID.layers - 1}, clean states included): ${(sweepMs / 1000).toFixed(2)} s = ${(sweepMs / forwardMs).toFixed(2)} forwards with the image; naive (one full forward per block): ${(naiveMs / 1000).toFixed(2)} s = ${(naiveMs / forwardMs).toFixed(2)} forwards; max |logit diff| ${sweepDiff.toExponential(2)} (largest |logit| ${scale.toPrecision(3)})\n`);
  const ep = await profiled(async () => void (await experimentSweep(model, source, cases, false)));
  print("cross-patching sweep (experiments' scheduler; the profiler's wall includes its setup)", ep);

  // The same sweep without reusing any position, only starting each run at its block (what torch's "resume at
  // layer" does; bench/sweep-measure.ts, core API): text rows, an entity span of 6 tokens near the end, 4 layers
  // stacked per forward.
  const target = ids.map((x, i) => (x === IMG ? 3 + ((i * 11) % (MID.vocab! - 4)) : x));
  const source2 = target.map((x, i) => (i >= T - 12 && i < T - 6 ? 3 + ((i * 13) % (MID.vocab! - 4)) : x));
  const spec = { source: source2, target, positions: [T - 12, T - 11, T - 10, T - 9, T - 8, T - 7] };
  scheduledSweep(model, spec, 4); // warm-up
  const s0 = performance.now();
  scheduledSweep(model, spec, 4);
  const resumeMs = performance.now() - s0;
  const textForward = () => {
    const out = model.forward({ inputIds: [target] });
    readLast(out.logits!);
    out.dispose();
  };
  const tf0 = performance.now();
  textForward();
  const textForwardMs = performance.now() - tf0;
  const sp = await profiled(() => void scheduledSweep(model, spec, 4));
  console.log(`resume-at-layer sweep, no positions reused (text rows, 12 layers, 4 per batch): ${(resumeMs / 1000).toFixed(2)} s = ${(resumeMs / forwardMs).toFixed(2)} forwards with the image = ${(resumeMs / textForwardMs).toFixed(2)} text forwards (${(textForwardMs / 1000).toFixed(2)} s each)\n`);
  print('resume-at-layer sweep', sp);
  samplePeak();

  pixels.dispose();
  model.dispose();
  shutdownEngine();
  const top = fp.kernels.slice(0, 5).map((k) => `${k.name}:${(k.ms / fp.wallMs).toFixed(3)}`).join(',');
  console.log(`peak RSS ${samplePeak().toFixed(0)} MB (now ${rssMb().toFixed(0)} MB; this process built the model from JS arrays, so see bench:load for the peak of loading and running it)`);
  // Loading from disk and the peak RSS of a process that loads and runs the model: bench:load in a child (issue
  // 20, deliverable 5: one last line with everything). --no-load skips it.
  let load = 'load_s=NaN load_rss_ratio=NaN run_rss_ratio=NaN';
  if (!smoke && !process.argv.includes('--no-load')) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(__dirname, 'load.ts')], { encoding: 'utf8', maxBuffer: 1 << 24 });
    const m = /^load: seconds=(\S+) file_gb=\S+ peak_rss_ratio=(\S+) run_peak_rss_ratio=(\S+)/m.exec(r.stdout ?? '');
    console.log(`\n## loading (bench:load)\n${(r.stdout ?? '').trim()}${r.status === 0 ? '' : `\nbench:load failed: ${(r.stderr ?? '').slice(-500)}`}`);
    if (m) load = `load_s=${m[1]} load_rss_ratio=${m[2]} run_rss_ratio=${m[3]}`;
  }
  console.log(
    `profile: forward_s=${(forwardMs / 1000).toFixed(2)} roofline_fraction=${Number.isFinite(fraction) ? fraction.toFixed(3) : 'NaN'} roofline_gflops=${Number.isFinite(roofline) ? roofline.toFixed(1) : 'NaN'} own_gemm_gflops=${own.toFixed(1)} own_gemm_fraction=${ownFraction.toFixed(3)} naive_sweep_s=${(naiveMs / 1000).toFixed(2)} sweep_s=${(sweepMs / 1000).toFixed(2)} sweep_forwards=${(sweepMs / forwardMs).toFixed(2)} resume_sweep_forwards=${(resumeMs / forwardMs).toFixed(2)} ${load} outside_share=${outsideShare.toFixed(3)} top=${top}`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

/** The last position's logits, read back (the row a decoder or an experiment's metric reads). */
function readLast(logits: tf.Tensor): Float32Array {
  return tf.tidy(() => logits.slice([0, logits.shape[1]! - 1, 0], [1, 1, -1]).dataSync() as Float32Array);
}
