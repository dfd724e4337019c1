// The engine configuration is parsed in one place: defaults, a frozen result, and a bad value of any variable
// is a ConfigError naming the variable, the value and what is allowed.
import assert from 'node:assert/strict';
import * as os from 'node:os';
import { test } from 'node:test';
import { DEFAULT_BATCHED_ATTENTION_MAX, ENGINE_VARIABLES, parseEngineConfig } from '../../src/engine/config';
import { ConfigError } from '../../src/errors';

test('defaults when nothing is set; the result is frozen', () => {
  const c = parseEngineConfig({});
  assert.deepEqual(c, {
    backend: 'auto',
    nativeMatMul: 'auto',
    nativeDir: null,
    blasLibraries: null,
    gemmIsa: null,
    threads: Math.max(1, Math.min(os.cpus().length, 16)),
    threadsFromEnv: false,
    memoryBudget: null,
    batchedAttentionMax: DEFAULT_BATCHED_ATTENTION_MAX,
    widgetsStatic: null,
  });
  assert.ok(Object.isFrozen(c));
});

test('set values are parsed', () => {
  const c = parseEngineConfig({
    HOPSCOPE_BACKEND: 'cpu',
    HOPSCOPE_NATIVE_MATMUL: '0',
    HOPSCOPE_THREADS: '3',
    HOPSCOPE_MEMORY_BUDGET: '512MiB',
    HOPSCOPE_BATCHED_ATTENTION_MAX: '1024',
    HOPSCOPE_WIDGETS_STATIC: '/x/static.js',
    HOPSCOPE_NATIVE_DIR: '/x/native',
    HOPSCOPE_BLAS_LIBRARY: '/opt/libopenblas.so.0::libblas.so.3',
    HOPSCOPE_GEMM_ISA: 'avx2',
  });
  assert.equal(c.gemmIsa, 'avx2');
  assert.equal(c.backend, 'cpu');
  assert.equal(c.nativeMatMul, 'off');
  assert.equal(c.threads, 3);
  assert.equal(c.threadsFromEnv, true);
  assert.equal(c.memoryBudget, 512 * 2 ** 20);
  assert.equal(c.batchedAttentionMax, 1024);
  assert.equal(c.widgetsStatic, '/x/static.js');
  assert.equal(c.nativeDir, '/x/native');
  assert.deepEqual(c.blasLibraries, ['/opt/libopenblas.so.0', 'libblas.so.3']);
});

test('a bad value is one ConfigError naming the variable, the value and what is allowed', () => {
  const bad: [Record<string, string>, RegExp][] = [
    [{ HOPSCOPE_THREADS: 'four' }, /HOPSCOPE_THREADS=four must be a positive integer/],
    [{ HOPSCOPE_THREADS: '0' }, /HOPSCOPE_THREADS=0 must be a positive integer/],
    [{ HOPSCOPE_THREADS: '2.5' }, /HOPSCOPE_THREADS=2\.5 must be a positive integer/],
    [{ HOPSCOPE_BACKEND: 'tpu' }, /HOPSCOPE_BACKEND=tpu is not a backend; use one of auto, tensorflow-gpu, tensorflow, wasm, cpu/],
    [{ HOPSCOPE_NATIVE_MATMUL: 'fast' }, /HOPSCOPE_NATIVE_MATMUL=fast is not a native matMul mode; use auto, on or off/],
    [{ HOPSCOPE_GEMM_ISA: 'avx3' }, /HOPSCOPE_GEMM_ISA=avx3 is not a built-in GEMM kernel; use auto, avx512 or avx2/],
    [{ HOPSCOPE_MEMORY_BUDGET: 'lots' }, /HOPSCOPE_MEMORY_BUDGET: "lots" is not a size/],
    [{ HOPSCOPE_BATCHED_ATTENTION_MAX: '-1' }, /HOPSCOPE_BATCHED_ATTENTION_MAX=-1 must be a whole number ≥ 0/],
  ];
  for (const [env, message] of bad) assert.throws(() => parseEngineConfig(env), (e: unknown) => e instanceof ConfigError && message.test((e as Error).message));
});

test('no library module outside src/engine/config.ts reads these variables', async () => {
  const { spawnSync } = await import('node:child_process');
  const path = await import('node:path');
  const root = path.resolve(__dirname, '..', '..');
  const reads = (dir: string, cwd: string) => {
    const r = spawnSync('grep', ['-rn', '--include=*.ts', '-E', `process\\.env\\.(${ENGINE_VARIABLES.join('|')})`, dir], { cwd, encoding: 'utf8' });
    assert.ok(r.status === 0 || r.status === 1, r.stderr);
    return r.stdout.trim().split('\n').filter(Boolean);
  };
  assert.deepEqual(reads('src', root).filter((h) => !h.startsWith('src/engine/config.ts')), []);
  // The check finds a read where there is one.
  const fs = await import('node:fs');
  const os = await import('node:os');
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-env-'));
  try {
    fs.writeFileSync(path.join(probe, 'p.ts'), 'export const t = process.env.HOPSCOPE_BLAS_LIBRARY;\n');
    assert.equal(reads('.', probe).length, 1);
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
});
