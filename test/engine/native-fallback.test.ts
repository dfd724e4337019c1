// The native BLAS path never half-works (issue 17): it is enabled only after its self-test passed in this
// process; a missing library, a wrong product or a native call that throws later all leave the stock kernels,
// with the reason in the engine line, and no forward fails. The wrong-product and run-time cases use the test
// hook's stand-in addon (a JS sgemm), so they run on machines without g++ or BLAS; the missing-library case
// runs the real addon in a child process with HOPSCOPE_BLAS_LIBRARY pointing nowhere.
import { after, afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import * as childProcess from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describeEngine, initEngine, shutdownEngine } from '../../src/engine/backend';
import { HopscopeError } from '../../src/errors';
import { buildNativeMatMul, nativeMatMulInfo, setNativeMatMulTestHooks, type NativeAddon } from '../../src/engine/native-matmul';

const REPO = path.resolve(__dirname, '..', '..');

afterEach(() => {
  shutdownEngine();
  setNativeMatMulTestHooks({});
});
after(() => shutdownEngine());

/** A stand-in addon: a plain row-major sgemm in JS, with `tamper` to make it wrong or make it throw. */
function jsAddon(tamper: { wrong?: boolean; throwFrom?: number } = {}): NativeAddon & { calls: number } {
  const ad = {
    calls: 0,
    load: () => 'libjsblas.so',
    setThreads: () => 1,
    sgemm(a: Float32Array, b: Float32Array, c: Float32Array, batch: number, M: number, N: number, K: number, tA: number, tB: number, sA: number, sB: number) {
      ad.calls++;
      if (tamper.throwFrom !== undefined && ad.calls >= tamper.throwFrom) throw new Error('native matmul: BLAS not loaded');
      for (let p = 0; p < batch; p++)
        for (let i = 0; i < M; i++)
          for (let j = 0; j < N; j++) {
            let s = 0;
            for (let k = 0; k < K; k++) s += a[p * sA + (tA ? k * M + i : i * K + k)] * b[p * sB + (tB ? j * K + k : k * N + j)];
            c[(p * M + i) * N + j] = tamper.wrong ? s + 1e-3 : s;
          }
    },
  };
  return ad;
}

/** A product the native kernel takes at any size (a transpose flag), and its stock value. */
function product(): number[] {
  return tf.tidy(() => Array.from(tf.matMul(tf.reshape(tf.range(0, 12), [3, 4]), tf.reshape(tf.range(0, 20), [5, 4]), false, true).dataSync()));
}

test('a BLAS whose small product is wrong fails the self-test: stock kernels, the reason in the engine line', async () => {
  const ad = jsAddon({ wrong: true });
  setNativeMatMulTestHooks({ addon: ad });
  const e = await initEngine({ backend: 'cpu', native: 'auto' });
  assert.equal(e.nativeMatMul.enabled, false);
  assert.match(e.nativeMatMul.reason ?? '', /libjsblas\.so failed the self-test: .*differs from the reference by 0\.00(1|09999)/);
  assert.match(describeEngine(e), /matMul: stock \(libjsblas\.so failed the self-test/);
  const calls = ad.calls;
  assert.deepEqual(product(), [14, 38, 62, 86, 110, 38, 126, 214, 302, 390, 62, 214, 366, 518, 670]);
  assert.equal(ad.calls, calls, 'an untrusted addon is never called by a forward');
  // 'on' means "fail if it cannot": a self-test failure is a clear error, not a half-working engine.
  shutdownEngine();
  await assert.rejects(initEngine({ backend: 'cpu', native: 'on' }), (err: Error) => err instanceof HopscopeError && /required but is unavailable: .*self-test/.test(err.message));
});

test('a correct BLAS passes the self-test and runs the products', async () => {
  const ad = jsAddon();
  setNativeMatMulTestHooks({ addon: ad });
  const e = await initEngine({ backend: 'cpu', native: 'auto' });
  assert.equal(e.nativeMatMul.enabled, true, e.nativeMatMul.reason);
  assert.ok(e.nativeMatMul.selfTestDiff !== undefined && e.nativeMatMul.selfTestDiff < 1e-4);
  assert.match(describeEngine(e), /matMul: native BLAS \(libjsblas\.so, self-tested\)/);
  const calls = ad.calls;
  assert.deepEqual(product(), [14, 38, 62, 86, 110, 38, 126, 214, 302, 390, 62, 214, 366, 518, 670]);
  assert.equal(ad.calls, calls + 1, 'the product went through the native kernel');
});

for (const backend of ['wasm', 'cpu'] as const) {
  test(`${backend}: a native call that throws mid-run falls back for that call and for good, and says why`, async () => {
    const ad = jsAddon({ throwFrom: Number.POSITIVE_INFINITY });
    setNativeMatMulTestHooks({ addon: ad });
    const e = await initEngine({ backend, threads: 1, native: 'auto' });
    assert.equal(e.nativeMatMul.enabled, true, e.nativeMatMul.reason);
    const expected = product();
    const tensors = tf.memory().numTensors;
    const dataIds = tf.engine().backend.numDataIds();
    ad.calls = 0;
    (ad as { sgemm: NativeAddon['sgemm'] }).sgemm = () => {
      ad.calls++;
      throw new Error('native matmul: BLAS not loaded');
    };
    assert.deepEqual(product(), expected, 'the failing call got the stock result');
    assert.equal(ad.calls, 1);
    assert.deepEqual(product(), expected);
    assert.equal(ad.calls, 1, 'after one failure the native kernel is never called again');
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(tf.engine().backend.numDataIds(), dataIds, 'the output the native call allocated was freed');
    assert.equal(nativeMatMulInfo().enabled, false);
    assert.match(describeEngine(e), /matMul: stock \(native sgemm failed at run time \(native matmul: BLAS not loaded\); stock kernels from then on\)/);
    // Asking again in the same process does not re-enable a library that failed.
    assert.equal((await initEngine({ native: 'auto' })).nativeMatMul.enabled, false);
  });
}

test('a BLAS library that is not there: stock kernels with the path in the reason, also on a second start', () => {
  let buildable = true;
  try {
    buildNativeMatMul();
  } catch {
    buildable = false;
  }
  // A fresh process: the real addon, never loaded before. Two starts, because a failed load once left the
  // addon cached and the second start announced "native BLAS ()" and then crashed the forward.
  const script = `
    const b = require('./src/engine/backend');
    const tf = require('@tensorflow/tfjs-core');
    (async () => {
      const lines = [];
      for (let i = 0; i < 2; i++) {
        const e = await b.initEngine({ backend: 'cpu', native: 'auto' });
        lines.push(b.describeEngine(e));
        b.shutdownEngine();
      }
      await b.initEngine({ backend: 'cpu', native: 'auto' });
      const y = tf.matMul(tf.ones([8, 8]), tf.ones([8, 8]), false, true);
      console.log(JSON.stringify({ lines, y: y.dataSync()[0] }));
    })();`;
  const r = childProcess.spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, HOPSCOPE_BLAS_LIBRARY: '/nonexistent/libopenblas.so.0' },
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { lines: string[]; y: number };
  for (const line of out.lines) {
    assert.match(line, /matMul: stock \(/);
    // A library that is not there: the names tried and what to install, in one line (not every dlopen error).
    if (buildable) assert.match(line, /matMul: stock \(no BLAS library with cblas_sgemm \(tried libopenblas\.so\.0; apt-get install libopenblas0-pthread\)\)/);
  }
  assert.equal(out.y, 8, 'a forward runs on the stock kernels');
});
