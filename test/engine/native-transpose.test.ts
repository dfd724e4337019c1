// The native addon's transpose (checkpoint loading, issue 20) is bit-for-bit the definition on every band shape,
// tile remainders and NaN payloads included; src/io/dtype.ts hands it the large bands and keeps the small ones;
// it is off with the native path; huge-page advice never touches small views. Skips, saying why, where the addon
// is not built (no compiler at install).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { adviseHugePages, nativeTranspose32, nativeTransposeInfo } from '../../src/engine/native-matmul';
import { transposeRowsU32 } from '../../src/io/dtype';

const REPO = path.resolve(__dirname, '..', '..');
const info = nativeTransposeInfo();
const skip = info.enabled ? false : `native transpose unavailable: ${info.reason}`;

/** A deterministic stream of 32-bit words, NaN payloads and signalling patterns among them. */
function words(n: number, seed: number): Uint32Array {
  const out = new Uint32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = i % 7 === 0 ? (0x7f800001 + (x & 0x3fffff)) >>> 0 : x >>> 0;
  }
  return out;
}

function reference(src: Uint32Array, nr: number, cols: number, dst: Uint32Array, rows: number, r0: number): void {
  for (let r = 0; r < nr; r++) for (let c = 0; c < cols; c++) dst[c * rows + r0 + r] = src[r * cols + c];
}

test('transpose32 equals the definition on bands of every shape, bit for bit', { skip }, () => {
  const t = nativeTranspose32()!;
  let seed = 1;
  for (const [rows, cols] of [[1, 1], [1, 77], [77, 1], [31, 33], [32, 32], [33, 64], [70, 45], [129, 257], [300, 31]]) {
    for (const [r0, nr] of [[0, rows], [0, Math.ceil(rows / 2)], [Math.floor(rows / 3), Math.max(1, Math.floor(rows / 3))]]) {
      if (r0 + nr > rows) continue;
      const src = words(nr * cols, seed++);
      const got = words(rows * cols, 999); // what the band does not cover must stay as it was
      const want = got.slice();
      t(src, nr, cols, got, rows, r0);
      reference(src, nr, cols, want, rows, r0);
      assert.deepEqual(got, want, `${rows}×${cols}, rows ${r0}..${r0 + nr - 1}`);
    }
  }
});

test('dtype.transposeRowsU32: large bands go native, small ones stay in JS, both exact', { skip }, () => {
  for (const [rows, cols] of [[1024, 96], [8, 8], [300, 300]]) {
    const src = words(rows * cols, rows);
    const got = new Uint32Array(rows * cols);
    const want = new Uint32Array(rows * cols);
    transposeRowsU32(src, rows, cols, got, rows, 0);
    reference(src, rows, cols, want, rows, 0);
    assert.deepEqual(got, want, `${rows}×${cols}`);
  }
});

test('bad bands are refused with a clear error, not written out of bounds', { skip }, () => {
  const t = nativeTranspose32()!;
  assert.throws(() => t(new Uint32Array(10), 5, 4, new Uint32Array(100), 10, 0), /sizes exceed the arrays/);
  assert.throws(() => t(new Uint32Array(40), 5, 4, new Uint32Array(40), 10, 8), /bad band/);
});

test('huge-page advice leaves small views alone and never advises more than the view', () => {
  assert.equal(adviseHugePages(new Float32Array(1024)), 0);
  const big = new Float32Array(3 << 20); // 12 MB
  const n = adviseHugePages(big);
  assert.ok(n >= 0 && n <= big.byteLength && n % (2 << 20) === 0, `advised ${n} bytes`);
});

test('with the native path turned off, loading transposes in JS and says why', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', "console.log(JSON.stringify(require('./src/engine/native-matmul').nativeTransposeInfo()))"], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, HOPSCOPE_NATIVE_MATMUL: 'off' },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), { enabled: false, reason: 'turned off' });
});
