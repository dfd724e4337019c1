// Backend selection: a forced backend (option or HOPSCOPE_BACKEND) is the one that runs, unknown names fail
// with a message that names the value and the choices, and the report says how many threads run.
import { after, afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { describeEngine, initEngine, shutdownEngine, type BackendName } from '../../src/engine/backend';
import { HopscopeError } from '../../src/errors';

const savedEnv = process.env.HOPSCOPE_BACKEND;
afterEach(() => {
  if (savedEnv === undefined) delete process.env.HOPSCOPE_BACKEND;
  else process.env.HOPSCOPE_BACKEND = savedEnv;
});
after(() => shutdownEngine());

test('forcing cpu by option runs the pure-JS backend with one thread', async () => {
  const e = await initEngine({ backend: 'cpu' });
  assert.equal(e.provider, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  assert.equal(e.poolThreads, 1);
  assert.match(describeEngine(e), /backend cpu .*1 thread\b/);
});

test('forcing wasm by option runs the threaded wasm backend and reports its threads', async () => {
  const e = await initEngine({ backend: 'wasm', threads: 2, native: 'off' });
  assert.equal(e.provider, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.equal(e.threads, 2, 'the XNNPACK pool has the 2 threads asked for (multi-threaded shim active)');
  assert.equal(e.poolThreads, 2);
  assert.match(describeEngine(e), /backend wasm .*2 threads/);
  const y = tf.matMul(tf.ones([4, 3]), tf.ones([3, 2]));
  assert.deepEqual(Array.from(y.dataSync()), new Array(8).fill(3));
  y.dispose();
});

test('HOPSCOPE_BACKEND forces the backend when no option is given', async () => {
  shutdownEngine();
  process.env.HOPSCOPE_BACKEND = 'cpu';
  const e = await initEngine();
  assert.equal(e.requested, 'cpu');
  assert.equal(e.provider, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  shutdownEngine();
  process.env.HOPSCOPE_BACKEND = 'wasm';
  const w = await initEngine();
  assert.equal(w.provider, 'wasm');
  assert.ok(w.threads >= 1);
});

test('an unknown backend name in HOPSCOPE_BACKEND is a clear error naming the value and the choices', async () => {
  shutdownEngine();
  process.env.HOPSCOPE_BACKEND = 'tpu';
  await assert.rejects(initEngine(), (e: Error) => {
    assert.ok(e instanceof HopscopeError);
    assert.match(e.message, /HOPSCOPE_BACKEND=tpu/);
    assert.match(e.message, /wasm/);
    assert.match(e.message, /cpu/);
    return true;
  });
});

test('an unknown backend name as an option is a clear error', async () => {
  shutdownEngine();
  delete process.env.HOPSCOPE_BACKEND;
  await assert.rejects(initEngine({ backend: 'tpu' as BackendName }), (e: Error) => {
    assert.match(e.message, /tpu/);
    return true;
  });
  shutdownEngine();
});

test('the native BLAS matMul is on by default when it builds and passes its self-test, off on request, and a bad mode is named', async () => {
  shutdownEngine();
  const e = await initEngine({ backend: 'wasm', threads: 2 });
  // Whether it can run here (g++, Node headers, a BLAS) is the machine's business; what must hold is that
  // it is either self-tested and on, or off with a reason the engine line prints (native-fallback.test.ts
  // forces each failure).
  if (e.nativeMatMul.enabled) {
    assert.ok(e.nativeMatMul.selfTestDiff !== undefined && e.nativeMatMul.selfTestDiff < 1e-4);
    // BLAS does the matMul work on the threads asked for; XNNPACK keeps one thread for what is left to it.
    assert.deepEqual([e.threads, e.poolThreads], [2, 1]);
    assert.match(describeEngine(e), /matMul: native (BLAS \(.+|\(built-in GEMM, (AVX2\+FMA|AVX-512)), self-tested\)/);
  } else {
    assert.ok(e.nativeMatMul.reason, 'a disabled native path says why');
    assert.ok(describeEngine(e).includes(`matMul: stock (${e.nativeMatMul.reason})`));
  }
  const off = await initEngine({ native: 'off' });
  assert.equal(off.nativeMatMul.enabled, false);
  assert.match(describeEngine(off), /matMul: stock \(turned off\)/);
  // With the stock kernels back, a product still computes (and agrees with the native one).
  const y = tf.matMul(tf.ones([64, 64]), tf.ones([64, 64]), false, true);
  assert.equal(y.dataSync()[0], 64);
  y.dispose();
  shutdownEngine();
  process.env.HOPSCOPE_NATIVE_MATMUL = 'fast';
  try {
    await assert.rejects(initEngine(), (err: Error) => err instanceof HopscopeError && /HOPSCOPE_NATIVE_MATMUL=fast .*auto, on or off/.test(err.message));
  } finally {
    delete process.env.HOPSCOPE_NATIVE_MATMUL;
  }
});

test('a script that used the threaded wasm engine ends on its own (the pool does not hold the process)', async () => {
  const { spawnSync } = await import('node:child_process');
  const path = await import('node:path');
  // No shutdownEngine and no process.exit: the process must end when its work is done, as a user's script does.
  const script = `
    const tf = require('@tensorflow/tfjs-core');
    const b = require('./src/engine/backend');
    (async () => {
      const e = await b.initEngine({ backend: 'wasm', threads: 2 });
      const y = tf.matMul(tf.ones([128, 128]), tf.ones([128, 128]));
      console.log(JSON.stringify({ poolThreads: e.poolThreads, y: (await y.data())[0] }));
    })();`;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
    cwd: path.resolve(__dirname, '../..'),
    encoding: 'utf8',
    env: { ...process.env, HOPSCOPE_NATIVE_MATMUL: 'off' },
    timeout: 60_000, // named: before the fix the child never ended; 60 s is ~20x its run time under load
  });
  assert.equal(r.signal, null, `the child was still running after ${((Date.now() - t0) / 1000).toFixed(0)} s (killed by ${r.signal})`);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { poolThreads: number; y: number };
  assert.equal(out.y, 128);
  assert.equal(out.poolThreads, 2, 'the pool was really multi-threaded');
});

test('the wasm module starts as many pthread workers as threads asked for, not the build-time pool of 8', async () => {
  const { wasmWorkerCount } = await import('../../src/engine/wasm-threads');
  for (const threads of [1, 2, 3]) {
    shutdownEngine(); // a running engine is returned as it is; a new thread count needs a fresh start
    const e = await initEngine({ backend: 'wasm', threads, native: 'off' });
    assert.equal(e.poolThreads, threads);
    // XNNPACK runs threads − 1 pthreads beside the caller; the pool holds `threads` (src/engine/wasm-threads.ts).
    assert.equal(wasmWorkerCount(), threads);
    const y = tf.matMul(tf.ones([96, 96]), tf.ones([96, 96]));
    assert.equal(y.dataSync()[0], 96);
    y.dispose();
  }
});
