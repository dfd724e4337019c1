// safetensors reader and writer. Format: u64 LE header length N, N bytes of JSON
// `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}`, then raw
// little-endian data; offsets are relative to the start of the data area (8 + N).
//
// Shards reach 5–10 GB and a Node Buffer caps at 4 GiB, so the file is never read whole: the header is
// parsed and validated once, and every tensor is read on demand with positioned `fs.readSync` calls,
// straight into the memory of the array that is returned wherever no conversion is needed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointError } from '../errors';
import {
  HOST_IS_LITTLE_ENDIAN,
  convertTransposeRows,
  toF32,
  transposeRowsU16,
  type CompactData,
  type FloatDtype,
} from './dtype';

/** Bytes per element of every byte-sized dtype in the safetensors spec. */
const DTYPE_BYTES = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
} as const;

/** A dtype hopscope can validate and return as raw bytes. */
export type Dtype = keyof typeof DTYPE_BYTES;

/** Dtypes that `readF32` / `readCompact` decode. */
export const FLOAT_DTYPES: readonly FloatDtype[] = ['F32', 'F16', 'BF16'];

export function dtypeBytes(dtype: Dtype): number {
  return DTYPE_BYTES[dtype];
}

function isDtype(s: string): s is Dtype {
  return Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

function isFloatDtype(d: Dtype): d is FloatDtype {
  return d === 'F32' || d === 'F16' || d === 'BF16';
}

const SUPPORTED_DTYPES_TEXT =
  `supported dtypes: ${FLOAT_DTYPES.join(', ')} (read as float32) and ` +
  `${Object.keys(DTYPE_BYTES).filter((d) => !(FLOAT_DTYPES as readonly string[]).includes(d)).join(', ')} (raw bytes only)`;

/** One tensor as stored in one file. */
export interface TensorEntry {
  /** Name as stored in the file. */
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** Absolute position of the first byte in the file. */
  readonly byteOffset: number;
  readonly byteLength: number;
  /** Path of the file holding it. */
  readonly file: string;
}

export interface ReadOptions {
  /**
   * Return a rank-2 `[rows, cols]` tensor as `[cols, rows]`: HF Linear weights are `[out, in]` and the
   * fast matMul path wants `[in, out]`. Converting and transposing happen in one pass.
   */
  transpose2d?: boolean;
  /**
   * readF32 only: fill this array (exactly the tensor's element count) instead of allocating one. The loader
   * passes a view of the tensor's final storage (the wasm heap), so the values are written once, where they
   * stay: no second copy, no second set of freshly touched pages (issue 20, zero-copy loading).
   */
  into?: Float32Array;
}

/** A float tensor with 16-bit data left as stored (half the memory of F32, for weight streaming). */
export interface CompactTensor {
  dtype: FloatDtype;
  /** Shape of `data` (already swapped when read with `transpose2d`). */
  shape: number[];
  /** F32: values; F16/BF16: bit patterns (convert with `toF32` from `./dtype`). */
  data: CompactData;
}

/** Spec limit of the Rust/Python library: a bigger header is corrupt or hostile, not a checkpoint. */
const MAX_HEADER_BYTES = 100_000_000;
/** Scratch for decoding: big enough to amortise syscalls, small next to the tensors themselves. */
const CHUNK_BYTES = 8 << 20;
/** One read(2) moves at most ~2 GiB on Linux; stay well under. */
const MAX_READ_BYTES = 1 << 30;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function allocate<T>(make: () => T, what: string): T {
  try {
    return make();
  } catch (e) {
    if (e instanceof RangeError) throw new CheckpointError(`${what}: cannot allocate memory for it (${e.message})`);
    throw e;
  }
}

/**
 * One scratch buffer for every band of every tensor read (the reads are synchronous, so it is never shared).
 * A fresh 8 MB buffer per tensor meant fresh pages per tensor, and first-touching them was the slowest part of a
 * load on a VM (issue 20: 2.3 s of "read" for a 1.15 GB checkpoint whose bytes take 0.1 s to copy).
 */
let scratchBuffer: ArrayBuffer | null = null;
function scratchOf(bytes: number, what: string): ArrayBuffer {
  if (!scratchBuffer || scratchBuffer.byteLength < bytes) scratchBuffer = allocate(() => new ArrayBuffer(Math.max(bytes, CHUNK_BYTES)), what);
  return scratchBuffer;
}

/** An open safetensors file: header parsed and validated, data read tensor by tensor. */
export class SafetensorsFile {
  /** Tensors in header order (the Python writer sorts them by name). */
  readonly entries: ReadonlyMap<string, TensorEntry>;
  /** `__metadata__` (string → string), empty when absent. */
  readonly metadata: Readonly<Record<string, string>>;
  /** File size in bytes. */
  readonly size: number;
  private fd: number | null;

  private constructor(
    readonly path: string,
    fd: number,
    size: number,
    entries: Map<string, TensorEntry>,
    metadata: Record<string, string>,
  ) {
    this.fd = fd;
    this.size = size;
    this.entries = entries;
    this.metadata = metadata;
  }

  /** Opens and validates a file; every defect is one CheckpointError naming the file (and tensor). */
  static open(file: string): SafetensorsFile {
    if (!HOST_IS_LITTLE_ENDIAN) {
      throw new CheckpointError(`${file}: safetensors data is little-endian and this host is big-endian; not supported`);
    }
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new CheckpointError(
        code === 'ENOENT' ? `${file}: no such safetensors file` : `${file}: cannot open (${(e as Error).message})`,
      );
    }
    try {
      const { size, entries, metadata } = parseHeader(file, fd);
      return new SafetensorsFile(file, fd, size, entries, metadata);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** The tensor's entry; CheckpointError naming the file when absent. */
  entry(name: string): TensorEntry {
    const e = this.entries.get(name);
    if (e === undefined) {
      throw new CheckpointError(`${this.path}: no tensor named '${name}' (the file has ${this.entries.size} tensors)`);
    }
    return e;
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The tensor's raw bytes, any dtype, in a fresh (hence aligned) buffer. */
  readBytes(name: string): Uint8Array {
    const e = this.entry(name);
    const out = allocate(() => new Uint8Array(e.byteLength), `${this.path}: tensor '${name}' (${e.byteLength} bytes)`);
    this.readInto(e, out, 0);
    return out;
  }

  /**
   * The tensor as float32 (F32 read zero-copy into the result; F16/BF16 converted exactly), optionally
   * transposed from `[rows, cols]` to `[cols, rows]`.
   */
  readF32(name: string, opts: ReadOptions = {}): Float32Array {
    const e = this.entry(name);
    const dtype = this.floatDtype(e, 'readF32');
    const n = e.byteLength / DTYPE_BYTES[dtype];
    if (opts.into && opts.into.length !== n) {
      throw new CheckpointError(`${this.path}: tensor '${name}' has ${n} values; the destination holds ${opts.into.length}`);
    }
    const out = opts.into ?? allocate(() => new Float32Array(n), `${this.path}: tensor '${name}' (${n} float32 values)`);
    if (opts.transpose2d) {
      const [rows, cols] = this.matrixShape(e);
      this.streamRows(e, dtype, rows, cols, (band, r0, nr) => convertTransposeRows(dtype, band, nr, cols, out, rows, r0));
    } else if (dtype === 'F32') {
      this.readInto(e, new Uint8Array(out.buffer, out.byteOffset, out.byteLength), 0);
    } else {
      // Decode in chunks (a flat tensor is n rows of one element) so the scratch stays small.
      this.streamRows(e, dtype, n, 1, (band, r0, nr) => toF32(dtype, band, out.subarray(r0, r0 + nr)));
    }
    return out;
  }

  /** A float tensor in its stored precision: F32 as Float32Array, F16/BF16 bit patterns as Uint16Array. */
  readCompact(name: string, opts: ReadOptions = {}): CompactTensor {
    const e = this.entry(name);
    const dtype = this.floatDtype(e, 'readCompact');
    if (dtype === 'F32') {
      const data = this.readF32(name, { transpose2d: opts.transpose2d });
      return { dtype, shape: opts.transpose2d ? [e.shape[1], e.shape[0]] : [...e.shape], data };
    }
    const n = e.byteLength / 2;
    const out = allocate(() => new Uint16Array(n), `${this.path}: tensor '${name}' (${n} 16-bit values)`);
    if (!opts.transpose2d) {
      this.readInto(e, new Uint8Array(out.buffer, out.byteOffset, out.byteLength), 0);
      return { dtype, shape: [...e.shape], data: out };
    }
    const [rows, cols] = this.matrixShape(e);
    this.streamRows(e, dtype, rows, cols, (band, r0, nr) =>
      transposeRowsU16(band as Uint16Array, nr, cols, out, rows, r0),
    );
    return { dtype, shape: [cols, rows], data: out };
  }

  /** Closes the file descriptor; later reads throw. Safe to call twice. */
  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }

  private floatDtype(e: TensorEntry, op: string): FloatDtype {
    if (!isFloatDtype(e.dtype)) {
      throw new CheckpointError(
        `${this.path}: tensor '${e.name}' has dtype ${e.dtype}; ${op} reads only ${FLOAT_DTYPES.join(', ')} ` +
          `(use readBytes for raw ${e.dtype} data)`,
      );
    }
    return e.dtype;
  }

  private matrixShape(e: TensorEntry): [number, number] {
    if (e.shape.length !== 2) {
      throw new CheckpointError(
        `${this.path}: tensor '${e.name}' has shape ${fmtShape(e.shape)}; transpose2d needs a rank-2 tensor`,
      );
    }
    return [e.shape[0], e.shape[1]];
  }

  /**
   * Reads a [rows, cols] tensor in bands of whole rows into one reused scratch buffer and hands each
   * band to `use` (which converts and/or transposes it into the result).
   */
  private streamRows(
    e: TensorEntry,
    dtype: FloatDtype,
    rows: number,
    cols: number,
    use: (band: CompactData, r0: number, nr: number) => void,
  ): void {
    if (rows === 0 || cols === 0) return;
    const bpe = DTYPE_BYTES[dtype];
    const rowBytes = cols * bpe;
    // Multiple of 32 rows so the transpose tiles stay full; at least one tile of rows.
    const bandRows = Math.min(rows, Math.max(32, Math.floor(CHUNK_BYTES / rowBytes / 32) * 32));
    const scratch = scratchOf(bandRows * rowBytes, `${this.path}: tensor '${e.name}' (scratch for ${bandRows} rows)`);
    const bytes = new Uint8Array(scratch);
    for (let r0 = 0; r0 < rows; r0 += bandRows) {
      const nr = Math.min(bandRows, rows - r0);
      const len = nr * rowBytes;
      this.readInto(e, bytes.subarray(0, len), r0 * rowBytes);
      const band = dtype === 'F32' ? new Float32Array(scratch, 0, nr * cols) : new Uint16Array(scratch, 0, nr * cols);
      use(band, r0, nr);
    }
  }

  /** Fills `dst` from the tensor's bytes starting `skip` bytes into the tensor. */
  private readInto(e: TensorEntry, dst: Uint8Array, skip: number): void {
    if (this.fd === null) throw new CheckpointError(`${this.path}: file is closed; cannot read tensor '${e.name}'`);
    let done = 0;
    while (done < dst.length) {
      const want = Math.min(dst.length - done, MAX_READ_BYTES);
      const got = fs.readSync(this.fd, dst, done, want, e.byteOffset + skip + done);
      if (got === 0) {
        throw new CheckpointError(
          `${this.path}: tensor '${e.name}' ends early (file shrank after it was opened?): ` +
            `read ${skip + done} of ${e.byteLength} bytes`,
        );
      }
      done += got;
    }
  }
}

interface ParsedHeader {
  size: number;
  entries: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

function parseHeader(file: string, fd: number): ParsedHeader {
  const bad = (msg: string): CheckpointError => new CheckpointError(`${file}: ${msg}`);
  const size = fs.fstatSync(fd).size;
  if (size < 8) {
    throw bad(`file is ${size} bytes, shorter than the 8-byte header length of a safetensors file (truncated download?)`);
  }
  const prefix = Buffer.alloc(8);
  fs.readSync(fd, prefix, 0, 8, 0);
  const headerLen64 = prefix.readBigUInt64LE(0);
  if (headerLen64 > BigInt(size - 8)) {
    throw bad(
      `header length ${headerLen64} is past the end of the file (${size} bytes): truncated or not a safetensors file`,
    );
  }
  const headerLen = Number(headerLen64);
  if (headerLen > MAX_HEADER_BYTES) {
    throw bad(`header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit of the format`);
  }
  const raw = Buffer.alloc(headerLen);
  if (headerLen > 0) fs.readSync(fd, raw, 0, headerLen, 8);

  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
  } catch (e) {
    throw bad(`header is not valid UTF-8 JSON (${(e as Error).message}): not a safetensors file, or corrupt`);
  }
  if (!isPlainObject(json)) throw bad('header JSON is not an object of tensors');

  const dataStart = 8 + headerLen;
  const dataSize = size - dataStart;
  const entries = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  const spans: { name: string; begin: number; end: number }[] = [];

  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
        throw bad('__metadata__ must be an object of string values');
      }
      metadata = value as Record<string, string>;
      continue;
    }
    const t = (msg: string): CheckpointError => bad(`tensor '${name}': ${msg}`);
    if (!isPlainObject(value)) throw t('header entry is not an object {dtype, shape, data_offsets}');
    const { dtype, shape, data_offsets: offsets } = value;
    if (typeof dtype !== 'string') throw t('dtype is missing or not a string');
    if (!isDtype(dtype)) throw t(`unknown or unsupported dtype '${dtype}'; ${SUPPORTED_DTYPES_TEXT}`);
    if (!Array.isArray(shape) || !shape.every((d): d is number => Number.isSafeInteger(d) && d >= 0)) {
      throw t(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o): o is number => Number.isSafeInteger(o) && o >= 0)
    ) {
      throw t(`data_offsets ${JSON.stringify(offsets)} is not a pair [begin, end] of non-negative integers`);
    }
    const [begin, end] = offsets;
    if (begin > end) throw t(`data_offsets [${begin}, ${end}] are out of order (begin after end)`);
    const numel = shape.reduce((a, d) => a * d, 1);
    const expected = numel * DTYPE_BYTES[dtype];
    if (!Number.isSafeInteger(expected)) throw t(`shape ${fmtShape(shape)} is too large to address`);
    if (end - begin !== expected) {
      throw t(
        `shape ${fmtShape(shape)} × ${dtype} needs ${expected} bytes but data_offsets [${begin}, ${end}] ` +
          `hold ${end - begin} (shape/byte-count mismatch)`,
      );
    }
    if (end > dataSize) {
      throw t(
        `data_offsets [${begin}, ${end}] run past the end of the data area (${dataSize} bytes): ` +
          `offsets out of range, or the file is truncated`,
      );
    }
    entries.set(name, {
      name, dtype, shape: Object.freeze([...shape]), byteOffset: dataStart + begin, byteLength: expected, file,
    });
    if (end > begin) spans.push({ name, begin, end });
  }

  // Gaps in the data area are tolerated; two tensors sharing bytes are not.
  spans.sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < spans.length; i++) {
    const p = spans[i - 1];
    const s = spans[i];
    if (s.begin < p.end) {
      throw bad(
        `tensors '${p.name}' [${p.begin}, ${p.end}] and '${s.name}' [${s.begin}, ${s.end}] have overlapping data_offsets`,
      );
    }
  }
  return { size, entries, metadata };
}

// ---------------------------------------------------------------------------------------------
// Writer

/** A tensor to write: F32 as Float32Array, F16/BF16 as their 16-bit patterns. */
export interface TensorToWrite {
  dtype: FloatDtype;
  shape: readonly number[];
  data: CompactData;
}

/**
 * Writes a safetensors file readable by the Python/Rust library. Tensors are laid out by element size
 * (largest first), then by name (the Rust writer likewise orders by dtype first), so every tensor starts
 * aligned to its element size; with one dtype this is plain name order, and rewriting an HF file gives
 * the same bytes. The header is padded with spaces to a multiple of 8, as the library does.
 * Written to a temporary file and renamed, so a crash never leaves a half-written checkpoint behind.
 */
export function writeSafetensors(
  file: string,
  tensors: Readonly<Record<string, TensorToWrite>>,
  metadata?: Readonly<Record<string, string>>,
): void {
  const names = Object.keys(tensors).sort((a, b) => {
    const d = DTYPE_BYTES[tensors[b].dtype] - DTYPE_BYTES[tensors[a].dtype];
    return d !== 0 ? d : a < b ? -1 : a > b ? 1 : 0;
  });
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new CheckpointError(`${file}: __metadata__ '${k}' must be a string`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const name of names) {
    if (name === '__metadata__') throw new CheckpointError(`${file}: '__metadata__' is reserved, not a tensor name`);
    const { dtype, shape, data } = tensors[name];
    const bad = (msg: string): CheckpointError => new CheckpointError(`${file}: tensor '${name}': ${msg}`);
    if (!isFloatDtype(dtype)) throw bad(`cannot write dtype '${String(dtype)}'; use ${FLOAT_DTYPES.join(', ')}`);
    if (dtype === 'F32' ? !(data instanceof Float32Array) : !(data instanceof Uint16Array)) {
      throw bad(`${dtype} data must be a ${dtype === 'F32' ? 'Float32Array' : 'Uint16Array of bit patterns'}`);
    }
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(`bad shape ${fmtShape(shape)}`);
    const numel = shape.reduce((a, d) => a * d, 1);
    if (numel !== data.length) throw bad(`shape ${fmtShape(shape)} has ${numel} elements but data has ${data.length}`);
    header[name] = { dtype, shape: [...shape], data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad > 0) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length), 0);

  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  const fd = fs.openSync(tmp, 'w');
  try {
    try {
      writeAll(fd, prefix);
      writeAll(fd, json);
      for (const name of names) {
        const d = tensors[name].data;
        writeAll(fd, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      }
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) {
    done += fs.writeSync(fd, bytes, done, Math.min(bytes.length - done, MAX_READ_BYTES));
  }
}
