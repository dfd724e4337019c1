// The optional native (BLAS) matMul kernels give the stock kernels' results on wasm and cpu: every
// transpose combination, batched and broadcast batches, fused bias/relu, and a whole model forward
// (HF-parity fixture) within 1e-5, with whatever sgemm this machine has (a system BLAS, else the built-in GEMM, which
// also gets a process of its own). Skipped, with the reason, where the addon cannot build or neither can run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { disableNativeMatMul, enableNativeMatMul, nativeAddonPath, type NativeMatMulInfo } from '../../src/engine/native-matmul';
import { loadModelFromDir } from '../../src/models/load';
import { fixture, pixels, readJson } from '../models/helpers';

// Probed at load time: `skip` is decided when the tests are declared.
const info: NativeMatMulInfo = enableNativeMatMul({ minWork: 0 });
disableNativeMatMul();
before(async () => {
  await initEngine({ backend: 'wasm', threads: 2 });
});
after(() => {
  disableNativeMatMul();
  shutdownEngine();
});

function seeded(shape: number[], seed: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    v[i] = x / 2147483648 - 0.5;
  }
  return tf.tensor(v, shape);
}

/**
 * `fn` on the reference (pure-JS cpu backend, stock kernels) and on `backend` with the native kernels;
 * returns the max abs difference and both shapes. (The reference is cpu, not stock wasm: tfjs 4.22's wasm
 * _FusedMatMul is wrong with transposeA plus a bias, see docs/performance.md.)
 */
async function compare(backend: string, fn: () => tf.Tensor): Promise<{ diff: number; shape: number[]; nativeShape: number[] }> {
  disableNativeMatMul();
  await tf.setBackend('cpu');
  const ref = fn();
  const a = ref.dataSync();
  await tf.setBackend(backend);
  enableNativeMatMul({ minWork: 0 });
  const got = fn();
  disableNativeMatMul();
  const b = got.dataSync();
  let diff = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < a.length && diff !== Infinity; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
  const out = { diff, shape: ref.shape, nativeShape: got.shape };
  tf.dispose([ref, got]);
  return out;
}

const skip = () => (info.enabled ? false : `native matMul unavailable: ${info.reason}`);
const CPU_FLAGS = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';

/** The built-in GEMM needs the addon built and an x86-64 CPU with AVX2 and FMA. */
function builtinSkip(): string | false {
  if (!fs.existsSync(nativeAddonPath())) return 'the native addon is not built';
  return process.arch === 'x64' && / avx2 /.test(CPU_FLAGS) && / fma /.test(CPU_FLAGS) ? false : 'the built-in GEMM needs x86-64 with AVX2 and FMA';
}

for (const backend of ['wasm', 'cpu'] as const) {
  test(`${backend}: native matMul equals the reference cpu kernels (transposes, batches, broadcasting, fused)`, { skip: skip() }, async () => {
    const cases: [string, () => tf.Tensor][] = [];
    // The last three cross the built-in GEMM's blocks (KC 256, MC 96 or 288, NC 2048) and its thread splits, with edge tiles.
    for (const [m, k, n] of [[1, 1, 1], [3, 5, 7], [37, 64, 19], [96, 256, 768], [97, 257, 33], [130, 300, 2100], [301, 260, 40]])
      for (const tA of [false, true])
        for (const tB of [false, true])
          cases.push([`${m}x${k}x${n} tA=${tA} tB=${tB}`, () => tf.tidy(() => tf.matMul(seeded(tA ? [k, m] : [m, k], m + 1), seeded(tB ? [n, k] : [k, n], n + 2), tA, tB))]);
    cases.push(['batched [2,3]', () => tf.tidy(() => tf.matMul(seeded([2, 3, 8, 5], 1), seeded([2, 3, 5, 4], 2)))]);
    cases.push(['broadcast b', () => tf.tidy(() => tf.matMul(seeded([4, 8, 5], 3), seeded([5, 6], 4)))]);
    cases.push(['broadcast a, tB', () => tf.tidy(() => tf.matMul(seeded([1, 8, 5], 5), seeded([3, 6, 5], 6), false, true))]);
    cases.push(['fused bias', () => tf.tidy(() => tf.fused.matMul({ a: seeded([9, 5], 7), b: seeded([5, 6], 8), bias: seeded([6], 9) }))]);
    cases.push(['fused bias relu tA', () => tf.tidy(() => tf.fused.matMul({ a: seeded([5, 9], 7), b: seeded([5, 6], 8), bias: seeded([6], 9), activation: 'relu', transposeA: true }))]);
    cases.push(['fused scalar bias', () => tf.tidy(() => tf.fused.matMul({ a: seeded([9, 5], 7), b: seeded([5, 6], 8), bias: tf.scalar(0.25) }))]);
    cases.push(['fused elu (stock fallback)', () => tf.tidy(() => tf.fused.matMul({ a: seeded([9, 5], 7), b: seeded([5, 6], 8), activation: 'elu' }))]);
    cases.push(['matMul inside a gradient', () => tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(tf.matMul(x as tf.Tensor2D, seeded([5, 3], 10) as tf.Tensor2D)))(seeded([4, 5], 11)))]);
    await tf.setBackend(backend);
    const before = tf.memory().numTensors;
    for (const [name, fn] of cases) {
      const r = await compare(backend, fn);
      assert.deepEqual(r.nativeShape, r.shape, `${backend} ${name}: shape`);
      assert.ok(r.diff <= 1e-5, `${backend} ${name}: max |native - reference| = ${r.diff}`);
    }
    await tf.setBackend(backend);
    assert.equal(tf.memory().numTensors, before, 'no tensors leak through the native kernels');
  });
}

test('a whole VLM forward with native matMul matches the stock one within 1e-5 (HF-parity fixture)', { skip: skip() }, async () => {
  const model = loadModelFromDir(fixture('llava_tiny_A'));
  const inp = readJson(fixture('llava_tiny_A') + '/inputs.json');
  const px = pixels(inp.pixel_values);
  try {
    const r = await compare('wasm', () => {
      const o = model.forward({ inputIds: inp.input_ids, attentionMask: inp.attention_mask, pixelValues: px });
      const l = o.logits!.clone();
      o.dispose();
      return l;
    });
    assert.ok(r.diff <= 1e-5, `max |native - stock| logits = ${r.diff}`);
  } finally {
    model.dispose();
    px.dispose();
  }
});

/**
 * Runs `body` in a fresh process (its own engine: wasm, 2 threads, the native matMul for every product) with
 * `tf`, `info` (the native matMul's state) and `r(n)` (n seeded values in [-0.5, 0.5)) in scope; returns the JSON
 * its last line of output holds.
 */
function inChild<T>(body: string, env: Record<string, string>): T {
  const script = `
    const tf = require('@tensorflow/tfjs-core');
    const { enableNativeMatMul } = require('./src/engine/native-matmul');
    require('./src/engine/backend').initEngine({ backend: 'wasm', threads: 2 }).then(() => {
      const info = enableNativeMatMul({ minWork: 0 });
      let s = 5;
      const r = (n) => Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5));
      ${body}
    });`;
  const out = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
    cwd: path.resolve(__dirname, '..', '..'),
    encoding: 'utf8',
    env: { ...process.env, HOPSCOPE_NATIVE_MATMUL: 'on', ...env },
  });
  assert.equal(out.status, 0, out.stderr);
  return JSON.parse(out.stdout.trim().split('\n').pop()!) as T;
}

test('the built-in GEMM (HOPSCOPE_BLAS_LIBRARY=builtin) multiplies like a BLAS, in its own process', { skip: builtinSkip() }, () => {
  const out = inChild<{ info: NativeMatMulInfo; worst: number; unequal: number }>(
    `
      const [M, K, N] = [150, 520, 301];
      const a = r(M * K), b = r(K * N);
      const c = tf.matMul(tf.tensor2d(a, [M, K]), tf.tensor2d(b, [K, N]), false, false).dataSync();
      let worst = 0;
      for (let i = 0; i < M; i += 7) for (let j = 0; j < N; j += 5) {
        let ref = 0;
        for (let k = 0; k < K; k++) ref += a[i * K + k] * b[k * N + j];
        worst = Math.max(worst, Math.abs(ref - c[i * N + j]));
      }
      // A weight whose rows are 4 KB apart (N = 1024) is packed, not read in place (L1 set aliasing); the sums
      // must not change: the same product with the weight's rows 1,040 floats apart (read in place) is bit-equal.
      const [M2, K2, N2, W] = [40, 300, 1024, 1040];
      const a2 = r(M2 * K2), b2 = r(K2 * N2), wide = new Float32Array(K2 * W);
      for (let k = 0; k < K2; k++) wide.set(b2.subarray(k * N2, (k + 1) * N2), k * W);
      const c1 = tf.matMul(tf.tensor2d(a2, [M2, K2]), tf.tensor2d(b2, [K2, N2])).dataSync();
      const c2 = tf.matMul(tf.tensor2d(a2, [M2, K2]), tf.tensor2d(wide, [K2, W])).dataSync();
      let unequal = 0;
      for (let i = 0; i < M2; i++) for (let j = 0; j < N2; j++) if (c1[i * N2 + j] !== c2[i * W + j]) unequal++;
      console.log(JSON.stringify({ info, worst, unequal }));`,
    { HOPSCOPE_BLAS_LIBRARY: 'builtin' },
  );
  assert.equal(out.info.enabled, true, out.info.reason);
  assert.match(out.info.library ?? '', /built-in GEMM/);
  assert.ok(out.worst <= 1e-4, `max |built-in - float64 reference| = ${out.worst}`);
  assert.equal(out.unequal, 0, 'packing an aliased weight changed the sums');
});

/** Both micro-kernels of the built-in GEMM run only on a CPU with AVX-512F (the wide one) as well. */
function wideSkip(): string | false {
  const why = builtinSkip();
  if (why) return why;
  return / avx512f /.test(CPU_FLAGS) ? false : "this CPU has no AVX-512F, so only the built-in GEMM's AVX2 kernel runs here";
}

test("the built-in GEMM's AVX-512 and AVX2 kernels give the same bits (one process each), and AVX-512 is the default over a system BLAS", { skip: wideSkip() }, () => {
  // Shapes across the blocks (KC 256, MC 96 or 288, NC 2048), both widths' edge tiles (N = 33, 48, 1 against NR 16 and 32),
  // a 4 KB-strided weight (N = 1024, packed) and every transpose: each output is the same FMA chain per KC block.
  const run = (env: Record<string, string>) =>
    inChild<{ library: string; digest: string }>(
      `
      const h = require('node:crypto').createHash('sha256');
      for (const [M, K, N] of [[1, 1, 1], [7, 300, 33], [97, 257, 1024], [130, 600, 2100], [5, 64, 48], [301, 260, 40]])
        for (const tA of [false, true]) for (const tB of [false, true]) {
          const c = tf.matMul(tf.tensor2d(r(M * K), tA ? [K, M] : [M, K]), tf.tensor2d(r(K * N), tB ? [N, K] : [K, N]), tA, tB);
          h.update(Buffer.from(c.dataSync().buffer));
        }
      console.log(JSON.stringify({ library: info.library, digest: h.digest('hex') }));`,
      { HOPSCOPE_BLAS_LIBRARY: '', HOPSCOPE_GEMM_ISA: '', ...env },
    );
  const wide = run({ HOPSCOPE_BLAS_LIBRARY: 'builtin' });
  const narrow = run({ HOPSCOPE_BLAS_LIBRARY: 'builtin', HOPSCOPE_GEMM_ISA: 'avx2' });
  assert.equal(wide.library, 'built-in GEMM, AVX-512');
  assert.equal(narrow.library, 'built-in GEMM, AVX2+FMA');
  assert.equal(wide.digest, narrow.digest, 'the two kernels gave different bits');
  // Unpinned, a CPU with AVX-512 multiplies on the wide kernel whatever BLAS is installed (it is 1.6-1.8x Debian's
  // OpenBLAS); HOPSCOPE_GEMM_ISA=avx2 makes it choose as a CPU without AVX-512 would (a system BLAS first).
  assert.equal(run({}).library, 'built-in GEMM, AVX-512');
  assert.notEqual(run({ HOPSCOPE_GEMM_ISA: 'avx2' }).library, 'built-in GEMM, AVX-512');
});

test('disable puts the stock kernels back', { skip: skip() }, () => {
  enableNativeMatMul({ minWork: 0 });
  disableNativeMatMul();
  assert.equal(tf.getKernel(tf.BatchMatMul, 'wasm')!.kernelFunc.name, 'batchMatMul');
});
