// matMul GFLOP/s at the models' shapes: tfjs's stock kernel on the running backend, the optional native
// BLAS kernel, and the machine's roofline (numpy + system BLAS in a child process, same threads, same run).
import * as childProcess from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { disableNativeMatMul, enableNativeMatMul, nativeMatMulInfo } from '../src/engine/native-matmul';
import { timeMs } from './lib';

export interface MatShape {
  label: string;
  m: number;
  k: number;
  n: number;
  /** Counts toward the headline "models' shapes" number. */
  headline?: boolean;
}

export function matShapes(teaching: { d: number; inter: number; heads: number; kvHeads: number }, T: number, quick: boolean): MatShape[] {
  const hd = teaching.d / teaching.heads;
  const qkv = (teaching.heads + 2 * teaching.kvHeads) * hd;
  const s: MatShape[] = [
    { label: 'teach qkv', m: T, k: teaching.d, n: qkv },
    { label: 'teach gate/up', m: T, k: teaching.d, n: 2 * teaching.inter },
    { label: 'teach down', m: T, k: teaching.inter, n: teaching.d },
    { label: 'teach qkv, 8 rows', m: 8 * T, k: teaching.d, n: qkv },
    { label: '7B q/k/v/o', m: 600, k: 4096, n: 4096, headline: true },
    { label: '7B gate or up', m: 600, k: 4096, n: 11008, headline: true },
    { label: '7B down', m: 600, k: 11008, n: 4096, headline: !quick },
    { label: '7B decode', m: 1, k: 4096, n: 4096 },
  ];
  return quick ? s.filter((x) => x.label !== '7B down') : s;
}

export interface MatRow extends MatShape {
  stock: number;
  native: number;
  roofline: number;
}

function gflops(s: MatShape, ms: number): number {
  return (2 * s.m * s.k * s.n) / (ms * 1e6);
}

function reps(s: MatShape, quick: boolean): number {
  const flop = 2 * s.m * s.k * s.n;
  return flop > 1e10 ? (quick ? 1 : 3) : flop > 1e8 ? 3 : 9;
}

/** tfjs matMul [m,k]·[k,n] (rank 2, no transpose: the XNNPACK path on wasm), median ms. */
export function tfjsMatMulMs(s: MatShape, r: number): number {
  const a = tf.randomUniform([s.m, s.k], -1, 1) as tf.Tensor2D;
  const b = tf.randomUniform([s.k, s.n], -1, 1) as tf.Tensor2D;
  const ms = timeMs(() => {
    const y = tf.matMul(a, b);
    y.dataSync(); // wasm runs synchronously, but read back so every backend is timed to completion
    y.dispose();
  }, r);
  tf.dispose([a, b]);
  return ms;
}

/**
 * numpy's np.dot through the system BLAS at the same shapes and threads: the machine's roofline here.
 * Returns NaN per shape when Debian's python3-numpy is missing (`apt-get install -y python3-numpy`).
 */
export function rooflineGflops(shapes: MatShape[], threads: number, quick: boolean): { values: number[]; note: string } {
  const spec = JSON.stringify(shapes.map((s) => [s.m, s.k, s.n, reps(s, quick)]));
  const py = `
import json, sys, time
import numpy as np
out = []
for m, k, n, r in json.loads(sys.argv[1]):
    a = np.random.rand(m, k).astype(np.float32); b = np.random.rand(k, n).astype(np.float32)
    np.dot(a, b); ts = []
    for _ in range(r):
        t = time.perf_counter(); np.dot(a, b); ts.append(time.perf_counter() - t)
    ts.sort(); out.append(2 * m * k * n / ts[len(ts) // 2] / 1e9)
print(json.dumps(out))`;
  const env = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
  const r = childProcess.spawnSync('/usr/bin/python3', ['-c', py, spec], { encoding: 'utf8', env, timeout: 600_000 });
  if (r.status !== 0) {
    const why = (r.stderr || r.error?.message || '').includes('numpy') ? 'numpy missing: apt-get install -y python3-numpy' : (r.stderr || String(r.error)).split('\n').slice(-2).join(' ');
    return { values: shapes.map(() => NaN), note: `roofline unavailable (${why})` };
  }
  const cfg = childProcess.spawnSync('/usr/bin/python3', ['-c', 'import numpy; c = numpy.show_config(mode="dicts") if "mode" in numpy.show_config.__code__.co_varnames else None; print((c or {}).get("Build Dependencies", {}).get("blas", {}).get("name", "system BLAS"))'], { encoding: 'utf8', env });
  return { values: JSON.parse(r.stdout.trim().split('\n').pop()!), note: `numpy ${threads} threads, ${cfg.stdout.trim() || 'system BLAS'}` };
}

export function runMatMul(shapes: MatShape[], threads: number, quick: boolean): { rows: MatRow[]; note: string } {
  const hadNative = nativeMatMulInfo().enabled;
  disableNativeMatMul();
  const stock = shapes.map((s) => gflops(s, tfjsMatMulMs(s, reps(s, quick))));
  const info = enableNativeMatMul();
  const native = shapes.map((s) => (info.enabled ? gflops(s, tfjsMatMulMs(s, reps(s, quick))) : NaN));
  if (!hadNative) disableNativeMatMul();
  const roof = rooflineGflops(shapes, threads, quick);
  return {
    rows: shapes.map((s, i) => ({ ...s, stock: stock[i], native: native[i], roofline: roof.values[i] })),
    note: roof.note + (info.enabled ? '' : `; native matMul unavailable: ${info.reason}`),
  };
}
