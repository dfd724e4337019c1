// `hopscope doctor` and the native addon's build at install (issue 20, deliverables 2 and 4): the addon is built by
// `npm run build:native` (npm install's postinstall), never by a run; a run without the build says how to make
// it; doctor names what is active and the one command that turns the fast path on.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import type { EngineInfo } from '../../src/engine/backend';
import { doctorReport } from '../../src/cli/doctor';

const REPO = path.resolve(__dirname, '..', '..');
const tsx = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', ...args], { cwd: REPO, encoding: 'utf8', env: { ...process.env, ...env } });

function engine(over: Partial<EngineInfo> = {}): EngineInfo {
  return {
    requested: 'auto', backend: 'wasm', provider: 'wasm', threads: 2, poolThreads: 2,
    skipped: [{ backend: 'tensorflow', reason: "Cannot find module '@tensorflow/tfjs-node'" }],
    nativeMatMul: { enabled: false, backends: [], reason: 'no BLAS library with cblas_sgemm (tried libopenblas.so.0; apt-get install libopenblas0-pthread)' },
    nativeOps: { enabled: false, backends: [], reason: 'turned off' },
    ...over,
  };
}

test('doctor: each state of the fast path gets its one command', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-doctor-'));
  const built = path.join(dir, 'addon.node');
  fs.writeFileSync(built, '');
  try {
    const noBlas = doctorReport(engine(), built);
    assert.match(noBlas[0], /^engine: backend wasm/);
    assert.ok(noBlas.includes("skipped tensorflow: Cannot find module '@tensorflow/tfjs-node'"));
    assert.ok(noBlas.includes(`native matMul addon: ${built}`));
    assert.equal(noBlas.at(-1), 'fast path: off; to turn it on: apt-get install -y libopenblas0-pthread   (as root; then run hopscope again)');
    const notBuilt = doctorReport(engine({ nativeMatMul: { enabled: false, backends: [], reason: 'the native addon is not built' } }), path.join(dir, 'none.node'));
    assert.match(notBuilt.join('\n'), /native matMul addon: not built/);
    assert.match(notBuilt.at(-1)!, /to turn it on: npm run build:native/);
    const off = doctorReport(engine({ nativeMatMul: { enabled: false, backends: [], reason: 'turned off' } }), built);
    assert.match(off.at(-1)!, /unset HOPSCOPE_NATIVE_MATMUL/);
    const node = doctorReport(engine({ provider: 'tensorflow', backend: 'tensorflow', skipped: [], nativeMatMul: { enabled: false, backends: [], reason: 'not used with tensorflow' } }), built);
    assert.equal(node.at(-1), 'fast path: active');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('hopscope doctor runs on this machine and ends with the fast path\'s state', () => {
  const r = tsx(['src/cli/main.ts', 'doctor']);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /^engine: backend (wasm|cpu|tensorflow)/);
  assert.match(lines.at(-1)!, /^fast path: (active( \(built-in GEMM; OpenBLAS is faster still: apt-get install -y libopenblas0-pthread\))?|off; to turn it on: .+)$/);
});

test('the addon is built by build:native, never by a run; a run without it says how to build it', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-native-build-'));
  try {
    // A run with an empty build folder: stock kernels, the reason names the command, and nothing was compiled.
    const run = tsx(['-e', "require('./src/engine/backend').initEngine({ backend: 'cpu', native: 'auto' }).then((e) => console.log(require('./src/engine/backend').describeEngine(e)))"], { HOPSCOPE_NATIVE_DIR: dir });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /matMul: stock \(the native addon is not built for this source and Node v[\d.]+ \(`npm run build:native` builds it/);
    assert.deepEqual(fs.readdirSync(dir), [], 'a run compiled nothing');
    // No compiler: the build says so in one line and does not fail the install.
    const noCxx = tsx(['scripts/build-native.ts'], { HOPSCOPE_NATIVE_DIR: dir, CXX: '/nonexistent/g++' });
    assert.equal(noCxx.status, 0, noCxx.stderr);
    assert.match(noCxx.stdout, /^hopscope: native matMul addon not built \(.*\/nonexistent\/g\+\+.*\); the stock kernels will run/m);
    const cxx = spawnSync(process.env.CXX ?? 'g++', ['--version']);
    if (cxx.error) return; // no compiler here: the build itself is not testable
    const build = tsx(['scripts/build-native.ts'], { HOPSCOPE_NATIVE_DIR: dir });
    assert.equal(build.status, 0, build.stderr);
    assert.match(build.stdout, /^hopscope: native matMul (ready: .+ through |addon built, but no BLAS library)/m);
    assert.equal(fs.readdirSync(dir).filter((f) => /^native-matmul-[0-9a-f]{16}\.node$/.test(f)).length, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
