import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bf16ToF32,
  f16Table,
  f16ToF32,
  f32BitsToBf16Bits,
  f32ToBf16,
  f32ToF16,
  toF32,
  toF32Transposed,
  transpose2d,
} from '../../src/io/dtype';

/** IEEE half decoded arithmetically, independent of the bit-twiddling under test. */
function f16Reference(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * Math.pow(2, -24);
  if (e === 31) return m === 0 ? s * Infinity : NaN;
  return s * Math.pow(2, e - 15) * (1 + m / 1024);
}

function bitsToF32(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0];
}

function f32Bits(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}

/** Deterministic PRNG so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('F16 table is exact for all 65536 patterns', () => {
  const table = f16Table();
  assert.equal(table.length, 65536);
  for (let h = 0; h < 65536; h++) {
    const want = f16Reference(h);
    const got = table[h];
    if (Number.isNaN(want)) assert.ok(Number.isNaN(got), `h=0x${h.toString(16)}`);
    else assert.ok(Object.is(got, want), `h=0x${h.toString(16)}: got ${got}, want ${want}`);
  }
  const all = new Uint16Array(65536).map((_, i) => i);
  assert.deepEqual(f16ToF32(all), table);
});

test('F32→F16 round-trips every F16 value and keeps NaN', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const back = f32ToF16(f16ToF32(all));
  for (let h = 0; h < 65536; h++) {
    const isNaN16 = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (isNaN16) assert.ok((back[h] & 0x7c00) === 0x7c00 && (back[h] & 0x3ff) !== 0, `NaN 0x${h.toString(16)}`);
    else assert.equal(back[h], h, `h=0x${h.toString(16)}`);
  }
});

test('F32→F16 rounds to nearest, ties to even (vs brute force over the F16 grid)', () => {
  // Finite non-negative F16 values are increasing in their bit pattern 0..0x7bff.
  const grid = f16ToF32(new Uint16Array(0x7c00).map((_, i) => i));
  const max = grid[0x7bff];
  const reference = (x: number): number => {
    const a = Math.abs(x);
    const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
    // Above max + half an ulp (2^15 · 2^-11 = 16) everything overflows to Inf; exactly there is a tie to even (Inf).
    if (a >= max + 16) return sign | 0x7c00;
    let lo = 0;
    let hi = 0x7bff;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (grid[mid] <= a) lo = mid;
      else hi = mid - 1;
    }
    if (lo === 0x7bff) return sign | lo;
    const dLo = a - grid[lo];
    const dHi = grid[lo + 1] - a;
    const pick = dLo < dHi ? lo : dHi < dLo ? lo + 1 : lo % 2 === 0 ? lo : lo + 1;
    return sign | pick;
  };
  const xs: number[] = [0, -0, 65504, 65519.99, 65520, 65536, 1e-8, 2 ** -25, 2 ** -25 * 1.0001, 2 ** -24, 3 * 2 ** -25];
  // Every midpoint between neighbours (exact in F32), and just either side of it.
  for (let i = 0; i < 0x7bff; i += 7) {
    const mid = (grid[i] + grid[i + 1]) / 2;
    const b = f32Bits(mid);
    xs.push(mid, -mid, bitsToF32(b + 1), bitsToF32(b - 1));
  }
  const r = rng(1);
  for (let i = 0; i < 20000; i++) xs.push((r() - 0.5) * 2 ** Math.floor(r() * 44 - 28));
  const src = new Float32Array(xs);
  const got = f32ToF16(src);
  for (let i = 0; i < src.length; i++) {
    assert.equal(got[i], reference(src[i]), `x=${src[i]} (0x${f32Bits(src[i]).toString(16)})`);
  }
});

test('BF16→F32 is the top half of the F32 bits', () => {
  const src = new Uint16Array([0x0000, 0x8000, 0x3f80, 0xbf80, 0x7f80, 0xff80, 0x0001, 0x7fc0, 0x4049]);
  const out = bf16ToF32(src);
  assert.deepEqual(Array.from(out.slice(0, 6)), [0, -0, 1, -1, Infinity, -Infinity]);
  assert.equal(out[6], 2 ** -133);
  assert.ok(Number.isNaN(out[7]));
  assert.equal(out[8], 3.140625);
});

test('F32→BF16 rounds to nearest, ties to even', () => {
  const cases: [number, number][] = [
    [0x3f808000, 0x3f80], // exact tie, even below: stays
    [0x3f818000, 0x3f82], // exact tie, odd below: rounds up to even
    [0x3f808001, 0x3f81], // just above the tie
    [0x3f807fff, 0x3f80], // just below the tie
    [0xbf818000, 0xbf82], // sign does not matter
    [0x7f7fffff, 0x7f80], // largest float rounds to Inf
    [0x7f7f7fff, 0x7f7f],
    [0x00008000, 0x0000], // subnormal tie to even (zero)
    [0x00018000, 0x0002],
    [0x7f800000, 0x7f80],
    [0xff800000, 0xff80],
  ];
  for (const [x, want] of cases) assert.equal(f32BitsToBf16Bits(x), want, `0x${x.toString(16)}`);
  const got = f32ToBf16(new Float32Array(new Uint32Array(cases.map(([x]) => x)).buffer));
  assert.deepEqual(Array.from(got), cases.map(([, w]) => w));
  // NaN (including one whose payload sits only in the low half) must stay NaN, not become Inf.
  const nan = f32ToBf16(new Float32Array(new Uint32Array([0x7f800001, 0xffc00000]).buffer));
  assert.ok(Number.isNaN(bf16ToF32(nan)[0]) && Number.isNaN(bf16ToF32(nan)[1]));
});

test('F32→BF16 matches nearest-value arithmetic on random values', () => {
  const r = rng(2);
  const src = new Float32Array(20000).map(() => (r() - 0.5) * 2 ** Math.floor(r() * 60 - 30));
  const got = f32ToBf16(src);
  for (let i = 0; i < src.length; i++) {
    const b = f32Bits(src[i]);
    const lo = b >>> 16;
    const down = bitsToF32((lo << 16) >>> 0);
    const up = bitsToF32(((lo + 1) << 16) >>> 0);
    const dDown = Math.abs(src[i] - down);
    const dUp = Math.abs(up - src[i]);
    const want = dDown < dUp ? lo : dUp < dDown ? lo + 1 : lo % 2 === 0 ? lo : lo + 1;
    assert.equal(got[i], want, `x=${src[i]}`);
  }
});

test('transpose2d and the fused convert+transpose are exact on odd shapes', () => {
  for (const [rows, cols] of [[37, 53], [1, 70], [70, 1], [0, 5], [64, 64], [33, 100]]) {
    const f = new Float32Array(rows * cols).map((_, i) => i * 0.5 - 3);
    const t = transpose2d(f, rows, cols);
    const h = new Uint16Array(rows * cols).map((_, i) => (i * 40503) & 0xffff);
    const th = transpose2d(h, rows, cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        assert.equal(t[c * rows + r], f[r * cols + c]);
        assert.equal(th[c * rows + r], h[r * cols + c]);
      }
    }
    assert.deepEqual(transpose2d(t, cols, rows), f);
    assert.deepEqual(toF32Transposed('F32', f, rows, cols), t);
    assert.deepEqual(toF32Transposed('BF16', h, rows, cols), transpose2d(bf16ToF32(h), rows, cols));
    // deepEqual treats NaN as equal to NaN, so compare bits to be sure F16 NaN payloads are kept too.
    const a = toF32Transposed('F16', h, rows, cols);
    const b = transpose2d(f16ToF32(h), rows, cols);
    assert.deepEqual(new Uint32Array(a.buffer), new Uint32Array(b.buffer));
  }
});

test('moves keep NaN payload bits', () => {
  const bits = new Uint32Array([0x7f800001, 0xffbfffff, 0x7fc12345, 0x3f800000]);
  const f = new Float32Array(bits.buffer);
  assert.deepEqual(new Uint32Array(transpose2d(f, 2, 2).buffer), new Uint32Array([bits[0], bits[2], bits[1], bits[3]]));
  const copy = toF32('F32', f, new Float32Array(4));
  assert.deepEqual(new Uint32Array(copy.buffer), bits);
  assert.equal(toF32('F32', f), f);
});

test('conversions reject a destination of the wrong length', () => {
  assert.throws(() => bf16ToF32(new Uint16Array(4), new Float32Array(3)), RangeError);
  assert.throws(() => transpose2d(new Float32Array(6), 4, 2), RangeError);
});
