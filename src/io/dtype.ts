// Float conversions between the checkpoint dtypes (F32, F16, BF16) and 2-D transposes, fused so a HF
// `[out, in]` Linear weight becomes the `[in, out]` F32 layout in one pass over memory at load time
// (on wasm only rank-2 matMul without transpose flags takes the fast XNNPACK path).
//
// Everything moves 32-bit *bit patterns* through Uint32Array views rather than floats through
// Float32Array: a float read into a JS number and written back may have its NaN payload changed,
// and bit moves are exactly as fast.
import * as os from 'node:os';
import { nativeTranspose32 } from '../engine/native-matmul';

/** Float dtypes hopscope reads as F32 (tfjs has no float16 tensors). */
export type FloatDtype = 'F32' | 'F16' | 'BF16';

/** Raw data as stored: F32 as floats, F16/BF16 as their 16-bit patterns. */
export type CompactData = Float32Array | Uint16Array;

/** Views in this module reinterpret file bytes directly: only correct on little-endian hosts. */
export const HOST_IS_LITTLE_ENDIAN = os.endianness() === 'LE';

// ---------------------------------------------------------------------------------------------
// Scalars (bit patterns in, bit patterns out)

/** F16 bits → F32 bits, exact (every F16 value, subnormals, ±Inf and NaN payloads included). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // Subnormal: shift the leading 1 up to the implicit-bit position; each shift lowers the exponent.
  let e = 1;
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e--;
  }
  return (sign | ((e + 112) << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

/** F32 bits → F16 bits, round to nearest, ties to even; overflow → ±Inf; NaN stays NaN (quiet). */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Below 2^-25 (half the smallest subnormal) everything rounds to ±0; F32 subnormals land here too.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e; // 14..24
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    let r = m >>> shift;
    if (rem > half || (rem === half && (r & 1) !== 0)) r++; // may carry into the smallest normal: still right
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) !== 0)) r++; // a carry into exponent 31 gives Inf: right
  return sign | r;
}

/** F32 bits → BF16 bits, round to nearest, ties to even; NaN stays NaN (quiet). */
export function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---------------------------------------------------------------------------------------------
// F16 table: 65536 entries × 4 bytes = 256 KiB, fits in L2, built once on first use.

let f16Bits: Uint32Array | null = null;

function f16BitsTable(): Uint32Array {
  if (f16Bits === null) {
    const t = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) t[h] = f16BitsToF32Bits(h);
    f16Bits = t;
  }
  return f16Bits;
}

/** The exact F16 → F32 table, indexed by the 16-bit pattern (a view: do not modify). */
export function f16Table(): Float32Array {
  const t = f16BitsTable();
  return new Float32Array(t.buffer, t.byteOffset, t.length);
}

// ---------------------------------------------------------------------------------------------
// Flat conversions

function u32(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function checkDst(n: number, dst: { length: number } | undefined, what: string): void {
  if (dst !== undefined && dst.length !== n) {
    throw new RangeError(`${what}: destination has ${dst.length} elements, source ${n}`);
  }
}

/** F16 bit patterns → F32 (exact). */
export function f16ToF32(src: Uint16Array, dst?: Float32Array): Float32Array {
  checkDst(src.length, dst, 'f16ToF32');
  const out = dst ?? new Float32Array(src.length);
  const o = u32(out);
  const t = f16BitsTable();
  for (let i = 0, n = src.length; i < n; i++) o[i] = t[src[i]];
  return out;
}

/** BF16 bit patterns → F32 (exact: BF16 is the top half of an F32). */
export function bf16ToF32(src: Uint16Array, dst?: Float32Array): Float32Array {
  checkDst(src.length, dst, 'bf16ToF32');
  const out = dst ?? new Float32Array(src.length);
  const o = u32(out);
  for (let i = 0, n = src.length; i < n; i++) o[i] = src[i] << 16;
  return out;
}

/** F32 → BF16 bit patterns, round to nearest, ties to even (what torch's `.to(torch.bfloat16)` does). */
export function f32ToBf16(src: Float32Array, dst?: Uint16Array): Uint16Array {
  checkDst(src.length, dst, 'f32ToBf16');
  const out = dst ?? new Uint16Array(src.length);
  const s = u32(src);
  for (let i = 0, n = s.length; i < n; i++) {
    const x = s[i];
    // NaN would round into Inf (or flip sign); keep it a quiet NaN instead.
    out[i] =
      (x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0
        ? (x >>> 16) | 0x40
        : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** F32 → F16 bit patterns, round to nearest, ties to even; out-of-range values become ±Inf. */
export function f32ToF16(src: Float32Array, dst?: Uint16Array): Uint16Array {
  checkDst(src.length, dst, 'f32ToF16');
  const out = dst ?? new Uint16Array(src.length);
  const s = u32(src);
  for (let i = 0, n = s.length; i < n; i++) out[i] = f32BitsToF16Bits(s[i]);
  return out;
}

/** Any float dtype's compact data → F32. F32 input is returned as is (no copy) unless `dst` is given. */
export function toF32(dtype: FloatDtype, src: CompactData, dst?: Float32Array): Float32Array {
  if (dtype === 'F32') {
    if (!(src instanceof Float32Array)) throw new TypeError('toF32: F32 data must be a Float32Array');
    if (dst === undefined) return src;
    checkDst(src.length, dst, 'toF32');
    u32(dst).set(u32(src));
    return dst;
  }
  if (!(src instanceof Uint16Array)) throw new TypeError(`toF32: ${dtype} data must be a Uint16Array`);
  return dtype === 'BF16' ? bf16ToF32(src, dst) : f16ToF32(src, dst);
}

// ---------------------------------------------------------------------------------------------
// Cache-blocked transposes. Each kernel takes a band of `nr` consecutive rows (starting at row `r0`)
// of a row-major [rows, cols] matrix, packed in `src`, and writes them into the [cols, rows] result,
// so a large tensor can be streamed from disk band by band with a small scratch buffer.
// One monomorphic loop per element kind keeps V8 from deoptimising the inner loop.

/** Square tile edge: 32×32 four-byte elements is 4 KiB read + 4 KiB written, well inside L1. */
const TILE = 32;

function checkBand(srcLen: number, nr: number, cols: number, dstLen: number, rows: number, r0: number): void {
  if (srcLen < nr * cols || dstLen !== rows * cols || r0 < 0 || r0 + nr > rows) {
    throw new RangeError(
      `transpose band: src ${srcLen} for ${nr}×${cols}, dst ${dstLen} for ${rows}×${cols}, rows ${r0}..${r0 + nr}`,
    );
  }
}

/** Bands below this many words stay in JS: a native call and its threads cost more than they save. */
const NATIVE_TRANSPOSE_MIN = 1 << 16;

/**
 * Bit-exact 32-bit transpose of a row band (F32 → F32). Large bands go to the native addon's multi-threaded
 * transpose when it is built (src/engine/native-matmul.ts; issue 20: this loop and the first touch of the
 * destination's pages were most of a checkpoint's load), else this loop.
 */
export function transposeRowsU32(
  src: Uint32Array, nr: number, cols: number, dst: Uint32Array, rows: number, r0: number,
): void {
  checkBand(src.length, nr, cols, dst.length, rows, r0);
  const native = nr * cols >= NATIVE_TRANSPOSE_MIN ? nativeTranspose32() : null;
  if (native) return native(src, nr, cols, dst, rows, r0);
  for (let rb = 0; rb < nr; rb += TILE) {
    const re = Math.min(rb + TILE, nr);
    for (let cb = 0; cb < cols; cb += TILE) {
      const ce = Math.min(cb + TILE, cols);
      for (let c = cb; c < ce; c++) {
        let o = c * rows + r0 + rb;
        for (let r = rb; r < re; r++) dst[o++] = src[r * cols + c];
      }
    }
  }
}

/** 16-bit transpose of a row band (F16/BF16 kept compact). */
export function transposeRowsU16(
  src: Uint16Array, nr: number, cols: number, dst: Uint16Array, rows: number, r0: number,
): void {
  checkBand(src.length, nr, cols, dst.length, rows, r0);
  for (let rb = 0; rb < nr; rb += TILE) {
    const re = Math.min(rb + TILE, nr);
    for (let cb = 0; cb < cols; cb += TILE) {
      const ce = Math.min(cb + TILE, cols);
      for (let c = cb; c < ce; c++) {
        let o = c * rows + r0 + rb;
        for (let r = rb; r < re; r++) dst[o++] = src[r * cols + c];
      }
    }
  }
}

/** BF16 → F32 fused with the transpose of a row band. */
export function bf16TransposeRows(
  src: Uint16Array, nr: number, cols: number, dst: Uint32Array, rows: number, r0: number,
): void {
  checkBand(src.length, nr, cols, dst.length, rows, r0);
  for (let rb = 0; rb < nr; rb += TILE) {
    const re = Math.min(rb + TILE, nr);
    for (let cb = 0; cb < cols; cb += TILE) {
      const ce = Math.min(cb + TILE, cols);
      for (let c = cb; c < ce; c++) {
        let o = c * rows + r0 + rb;
        for (let r = rb; r < re; r++) dst[o++] = src[r * cols + c] << 16;
      }
    }
  }
}

/** F16 → F32 (table) fused with the transpose of a row band. */
export function f16TransposeRows(
  src: Uint16Array, nr: number, cols: number, dst: Uint32Array, rows: number, r0: number,
): void {
  checkBand(src.length, nr, cols, dst.length, rows, r0);
  const t = f16BitsTable();
  for (let rb = 0; rb < nr; rb += TILE) {
    const re = Math.min(rb + TILE, nr);
    for (let cb = 0; cb < cols; cb += TILE) {
      const ce = Math.min(cb + TILE, cols);
      for (let c = cb; c < ce; c++) {
        let o = c * rows + r0 + rb;
        for (let r = rb; r < re; r++) dst[o++] = t[src[r * cols + c]];
      }
    }
  }
}

/**
 * Transposes a row-major [rows, cols] matrix into a new (or given) [cols, rows] one, bit-exact.
 * Works on F32 values and on 16-bit patterns (compact F16/BF16).
 */
export function transpose2d<T extends Float32Array | Uint16Array>(src: T, rows: number, cols: number, dst?: T): T {
  if (src.length !== rows * cols) {
    throw new RangeError(`transpose2d: ${src.length} elements is not ${rows}×${cols}`);
  }
  if (src instanceof Float32Array) {
    const out = (dst as Float32Array | undefined) ?? new Float32Array(src.length);
    transposeRowsU32(u32(src), rows, cols, u32(out), rows, 0);
    return out as T;
  }
  const out = (dst as Uint16Array | undefined) ?? new Uint16Array(src.length);
  transposeRowsU16(src as Uint16Array, rows, cols, out, rows, 0);
  return out as T;
}

/**
 * Converts compact data of a row-major [rows, cols] matrix to F32 and transposes it to [cols, rows] in one
 * pass: the load path for HF `[out, in]` Linear weights.
 */
export function toF32Transposed(
  dtype: FloatDtype, src: CompactData, rows: number, cols: number, dst?: Float32Array,
): Float32Array {
  if (src.length !== rows * cols) {
    throw new RangeError(`toF32Transposed: ${src.length} elements is not ${rows}×${cols}`);
  }
  checkDst(src.length, dst, 'toF32Transposed');
  const out = dst ?? new Float32Array(src.length);
  convertTransposeRows(dtype, src, rows, cols, out, rows, 0);
  return out;
}

/** Band form of toF32Transposed, for streaming a tensor from disk in row bands. */
export function convertTransposeRows(
  dtype: FloatDtype, src: CompactData, nr: number, cols: number, dst: Float32Array, rows: number, r0: number,
): void {
  const d = u32(dst);
  if (dtype === 'F32') {
    if (!(src instanceof Float32Array)) throw new TypeError('convertTransposeRows: F32 data must be a Float32Array');
    transposeRowsU32(u32(src), nr, cols, d, rows, r0);
    return;
  }
  if (!(src instanceof Uint16Array)) throw new TypeError(`convertTransposeRows: ${dtype} data must be a Uint16Array`);
  if (dtype === 'BF16') bf16TransposeRows(src, nr, cols, d, rows, r0);
  else f16TransposeRows(src, nr, cols, d, rows, r0);
}
