// The decoder has two attention layouts: one batched matMul (small problems, or whenever the BLAS kernel
// runs) and rank-2 matMuls per (row, kv group) (large problems on the stock kernels). The HF fixtures are
// small, so the parity tests take the batched path; this runs the whole LLaVA parity file again with the
// batched path switched off and the stock kernels, so the per-(row, group) path meets the same 1e-5 bounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as childProcess from 'node:child_process';
import * as path from 'node:path';

test('the per-(row, kv group) attention path passes the LLaVA HF parity tests', () => {
  const root = path.resolve(__dirname, '..', '..');
  // Without the parent runner's NODE_TEST_CONTEXT the child reports on its own (TAP summary lines).
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const r = childProcess.spawnSync(process.execPath, ['--import', 'tsx', '--test', path.join('test', 'models', 'llava-parity.test.ts')], {
    cwd: root,
    encoding: 'utf8',
    env: { ...env, HOPSCOPE_BATCHED_ATTENTION_MAX: '0', HOPSCOPE_NATIVE_MATMUL: 'off' },
  });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, out.slice(-3000));
  const pass = Number(/^# pass (\d+)/m.exec(out)?.[1] ?? 0);
  assert.ok(pass > 0, 'the parity file ran no test');
  assert.match(out, /^# fail 0/m);
});
