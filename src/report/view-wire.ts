// Wire forms of numeric view data and the low-level readers behind validateViewState (src/report/views.ts):
// JSON lists, typed arrays, bare buffers (DataView, as widget buffers arrive) and {dtype, shape, buffer}
// objects all become plain number arrays with NaN for "not computed yet". Pure TypeScript, no DOM or Node.

export type Dtype = 'float32' | 'float64' | 'int8' | 'int16' | 'int32' | 'uint8' | 'uint16' | 'uint32';
const DTYPE_BYTES: Record<Dtype, number> = {
  float32: 4, float64: 8, int8: 1, int16: 2, int32: 4, uint8: 1, uint16: 2, uint32: 4,
};

/**
 * An explicitly typed binary array: `buffer` is the raw little-endian bytes (a DataView once it has
 * travelled as a widget buffer), `shape` its dimensions (row-major). Use this form when the dtype is not the
 * field's default (float32 for scores, uint8 for pixels) or when a matrix is sent flat.
 */
export interface BinaryArray {
  dtype: Dtype;
  shape?: number[];
  buffer: ArrayBuffer | ArrayBufferView;
}

/**
 * A 1-D numeric field on the wire: a JSON list (null = not computed yet), a typed array, a bare buffer (read
 * with the field's default dtype) or a `BinaryArray`.
 */
export type NumbersIn = ReadonlyArray<number | null> | ArrayBufferView | ArrayBuffer | BinaryArray;

/**
 * A 2-D field on the wire: nested JSON lists (inner lists may be shorter while a sweep streams), a
 * `BinaryArray` with a 2-D shape, or a flat form whose shape is taken from the view's axes.
 */
export type MatrixIn = ReadonlyArray<ReadonlyArray<number | null> | NumbersIn> | NumbersIn;

const MAX_PROBLEMS = 12;

export class Problems {
  readonly list: string[] = [];
  add(path: string, message: string): void {
    if (this.list.length < MAX_PROBLEMS) this.list.push(`${path}: ${message}`);
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v) && !(v instanceof ArrayBuffer);
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return `a binary buffer of ${v.byteLength} bytes`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function isBinaryArray(v: unknown): v is BinaryArray {
  return isRecord(v) && typeof v.dtype === 'string' && 'buffer' in v;
}

function readBinary(buf: ArrayBuffer | ArrayBufferView, dtype: Dtype): number[] | string {
  const view = buf instanceof ArrayBuffer ? new DataView(buf) : new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const size = DTYPE_BYTES[dtype];
  if (view.byteLength % size !== 0) return `${view.byteLength} bytes is not a whole number of ${dtype} values`;
  const n = view.byteLength / size;
  const out = new Array<number>(n);
  // DataView reads: the buffer may sit at an unaligned offset inside a message frame.
  for (let i = 0; i < n; i++) {
    const o = i * size;
    switch (dtype) {
      case 'float32': out[i] = view.getFloat32(o, true); break;
      case 'float64': out[i] = view.getFloat64(o, true); break;
      case 'int8': out[i] = view.getInt8(o); break;
      case 'int16': out[i] = view.getInt16(o, true); break;
      case 'int32': out[i] = view.getInt32(o, true); break;
      case 'uint8': out[i] = view.getUint8(o); break;
      case 'uint16': out[i] = view.getUint16(o, true); break;
      case 'uint32': out[i] = view.getUint32(o, true); break;
    }
  }
  return out;
}

/** The dtype a typed array's class says; null for a DataView (its bytes say nothing of their type). */
export function typedArrayDtype(v: ArrayBufferView): Dtype | null {
  if (v instanceof Float32Array) return 'float32';
  if (v instanceof Float64Array) return 'float64';
  if (v instanceof Int8Array) return 'int8';
  if (v instanceof Int16Array) return 'int16';
  if (v instanceof Int32Array) return 'int32';
  if (v instanceof Uint8Array || v instanceof Uint8ClampedArray) return 'uint8';
  if (v instanceof Uint16Array) return 'uint16';
  if (v instanceof Uint32Array) return 'uint32';
  return null; // DataView: dtype unknown, the field's default applies
}

interface Flat {
  values: number[];
  shape: number[] | null;
}

/** Any wire form → flat numbers (+ shape if the form carried one). */
function flatNumbers(v: unknown, path: string, p: Problems, defaultDtype: Dtype): Flat | null {
  if (Array.isArray(v)) {
    const out = new Array<number>(v.length);
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (x === null) out[i] = NaN;
      else if (typeof x === 'number') out[i] = x;
      else if (typeof x === 'boolean') out[i] = x ? 1 : 0;
      else {
        p.add(`${path}[${i}]`, `expected a number or null, got ${describe(x)}`);
        return null;
      }
    }
    return { values: out, shape: null };
  }
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
    const dtype = (ArrayBuffer.isView(v) && typedArrayDtype(v)) || defaultDtype;
    const r = readBinary(v, dtype);
    if (typeof r === 'string') {
      p.add(path, r);
      return null;
    }
    return { values: r, shape: null };
  }
  if (isBinaryArray(v)) {
    if (!(v.dtype in DTYPE_BYTES)) {
      p.add(`${path}.dtype`, `unknown dtype ${JSON.stringify(v.dtype)}; use one of ${Object.keys(DTYPE_BYTES).join(', ')}`);
      return null;
    }
    const buf = v.buffer as unknown;
    if (!(ArrayBuffer.isView(buf) || buf instanceof ArrayBuffer)) {
      p.add(`${path}.buffer`, `expected a binary buffer, got ${describe(buf)}`);
      return null;
    }
    const r = readBinary(buf, v.dtype);
    if (typeof r === 'string') {
      p.add(path, r);
      return null;
    }
    let shape: number[] | null = null;
    if (v.shape !== undefined) {
      if (!Array.isArray(v.shape) || !v.shape.every((d) => Number.isInteger(d) && d >= 0)) {
        p.add(`${path}.shape`, `expected a list of non-negative integers, got ${describe(v.shape)}`);
        return null;
      }
      const size = v.shape.reduce((a, b) => a * b, 1);
      if (size !== r.length) {
        p.add(`${path}.shape`, `[${v.shape.join(', ')}] holds ${size} values but the buffer has ${r.length}`);
        return null;
      }
      shape = v.shape;
    }
    return { values: r, shape };
  }
  p.add(path, `expected a list of numbers or a binary array, got ${describe(v)}`);
  return null;
}

/** A 1-D numeric field, padded with NaN up to `length` (a streaming sweep fills it gradually). */
export function numbers(v: unknown, path: string, p: Problems, length: number | null, dtype: Dtype = 'float32'): number[] | null {
  const flat = flatNumbers(v, path, p, dtype);
  if (!flat) return null;
  if (flat.shape && flat.shape.length !== 1) {
    p.add(path, `expected a 1-D array, got shape [${flat.shape.join(', ')}]`);
    return null;
  }
  return padTo(flat.values, length, path, p);
}

function padTo(values: number[], length: number | null, path: string, p: Problems): number[] | null {
  if (length === null) return values;
  if (values.length > length) {
    p.add(path, `has ${values.length} values but the axis has only ${length}`);
    return null;
  }
  while (values.length < length) values.push(NaN);
  return values;
}

/** A 2-D numeric field [rows][cols]; rows and columns may be short (padded with NaN). */
export function matrix(v: unknown, path: string, p: Problems, rows: number, cols: number): number[][] | null {
  if (Array.isArray(v) && v.length > 0 && v.every((r) => r === null || typeof r === 'number')) {
    // A flat JSON list: row-major rows × cols.
    return reshape(v as (number | null)[], path, p, rows, cols);
  }
  if (Array.isArray(v)) {
    if (v.length > rows) {
      p.add(path, `has ${v.length} rows but the axis has only ${rows}`);
      return null;
    }
    const out: number[][] = [];
    for (let r = 0; r < rows; r++) {
      if (r >= v.length) {
        out.push(new Array<number>(cols).fill(NaN));
        continue;
      }
      const row = numbers(v[r], `${path}[${r}]`, p, cols);
      if (!row) return null;
      out.push(row);
    }
    return out;
  }
  const flat = flatNumbers(v, path, p, 'float32');
  if (!flat) return null;
  if (flat.shape && flat.shape.length === 2) {
    const [r0, c0] = flat.shape;
    if (r0 > rows || c0 > cols) {
      p.add(path, `shape [${r0}, ${c0}] is larger than the axes [${rows}, ${cols}]`);
      return null;
    }
    const out: number[][] = [];
    for (let r = 0; r < rows; r++) {
      const row = new Array<number>(cols).fill(NaN);
      if (r < r0) for (let c = 0; c < c0; c++) row[c] = flat.values[r * c0 + c];
      out.push(row);
    }
    return out;
  }
  if (flat.shape && flat.shape.length !== 1) {
    p.add(path, `expected a 2-D array, got shape [${flat.shape.join(', ')}]`);
    return null;
  }
  return reshape(flat.values, path, p, rows, cols);
}

function reshape(values: ReadonlyArray<number | null>, path: string, p: Problems, rows: number, cols: number): number[][] | null {
  if (values.length !== rows * cols) {
    p.add(path, `a flat array needs ${rows}×${cols} = ${rows * cols} values, got ${values.length}`);
    return null;
  }
  const out: number[][] = [];
  for (let r = 0; r < rows; r++) {
    out.push(values.slice(r * cols, (r + 1) * cols).map((x) => (x === null ? NaN : x)));
  }
  return out;
}

/** A 3-D numeric field [L][P][K]. Nested lists or a flat array with shape [L, P, K]. */
export function cube(v: unknown, path: string, p: Problems, d0: number, d1: number): number[][][] | null {
  if (Array.isArray(v) && (v.length === 0 || Array.isArray(v[0]))) {
    if (v.length > d0) {
      p.add(path, `has ${v.length} entries but the axis has only ${d0}`);
      return null;
    }
    const out: number[][][] = [];
    for (let i = 0; i < v.length; i++) {
      const plane = v[i];
      if (!Array.isArray(plane)) {
        p.add(`${path}[${i}]`, `expected a list, got ${describe(plane)}`);
        return null;
      }
      if (plane.length > d1) {
        p.add(`${path}[${i}]`, `has ${plane.length} entries but the axis has only ${d1}`);
        return null;
      }
      const rows: number[][] = [];
      for (let j = 0; j < plane.length; j++) {
        const row = numbers(plane[j], `${path}[${i}][${j}]`, p, null);
        if (!row) return null;
        rows.push(row);
      }
      out.push(rows);
    }
    return out;
  }
  const flat = flatNumbers(v, path, p, 'float32');
  if (!flat) return null;
  if (!flat.shape || flat.shape.length !== 3) {
    p.add(path, 'a binary 3-D array needs {dtype, shape: [layers, positions, k], buffer}');
    return null;
  }
  const [a, b, k] = flat.shape;
  if (a > d0 || b > d1) {
    p.add(path, `shape [${a}, ${b}, ${k}] is larger than the axes [${d0}, ${d1}, k]`);
    return null;
  }
  const out: number[][][] = [];
  for (let i = 0; i < a; i++) {
    const rows: number[][] = [];
    for (let j = 0; j < b; j++) rows.push(flat.values.slice((i * b + j) * k, (i * b + j + 1) * k));
    out.push(rows);
  }
  return out;
}

export function field(data: Record<string, unknown>, key: string): unknown {
  return data[key];
}

/** The field's value, or undefined after recording that it is missing (`what` says what belongs there). */
export function required(data: Record<string, unknown>, key: string, path: string, p: Problems, what: string): unknown {
  const v = data[key];
  if (v === undefined || v === null) {
    p.add(`${path}.${key}`, `is missing (${what})`);
    return undefined;
  }
  return v;
}

export function requiredAxis(data: Record<string, unknown>, key: string, path: string, p: Problems): number[] | null {
  const v = field(data, key);
  if (v === undefined || v === null) {
    p.add(`${path}.${key}`, 'is missing (the layer indices of the x axis)');
    return null;
  }
  const xs = numbers(v, `${path}.${key}`, p, null, 'int32');
  if (!xs) return null;
  for (let i = 0; i < xs.length; i++) {
    if (!Number.isFinite(xs[i])) {
      p.add(`${path}.${key}[${i}]`, 'must be a finite number');
      return null;
    }
  }
  return xs;
}

export function requiredNumbers(data: Record<string, unknown>, key: string, path: string, p: Problems, length: number): number[] | null {
  const v = field(data, key);
  if (v === undefined || v === null) {
    p.add(`${path}.${key}`, `is missing (${length} values expected, one per layer)`);
    return null;
  }
  return numbers(v, `${path}.${key}`, p, length);
}

export function optionalNumbers(data: Record<string, unknown>, key: string, path: string, p: Problems, length: number): number[] | null {
  const v = field(data, key);
  if (v === undefined || v === null) return null;
  return numbers(v, `${path}.${key}`, p, length);
}

export function optionalNumber(data: Record<string, unknown>, key: string, path: string, p: Problems): number | null {
  const v = field(data, key);
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    p.add(`${path}.${key}`, `expected a finite number, got ${describe(v)}`);
    return null;
  }
  return v;
}

export function requiredNumber(v: unknown, path: string, p: Problems): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    p.add(path, `expected a finite number, got ${describe(v)}`);
    return NaN;
  }
  return v;
}

export function optionalString(data: Record<string, unknown>, key: string, path: string, p: Problems): string | null {
  const v = field(data, key);
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') {
    p.add(`${path}.${key}`, `expected a string, got ${describe(v)}`);
    return null;
  }
  return v;
}

/**
 * An optional field with a closed set of values: `fallback` when absent, null (a problem added) when not one of
 * `choices`. `what` names the kind in the message ("is not a column kind; use one of ...").
 */
export function optionalChoice<T extends string>(data: Record<string, unknown>, key: string, choices: readonly T[], fallback: T, path: string, p: Problems, what?: string): T | null {
  const v = field(data, key) ?? fallback;
  if ((choices as readonly unknown[]).includes(v)) return v as T;
  p.add(`${path}.${key}`, `${describe(v)} is not ${what ? `${what}; use ` : ''}one of ${choices.join(', ')}`);
  return null;
}

export function stringList(v: unknown, path: string, p: Problems): string[] | null {
  if (!Array.isArray(v)) {
    p.add(path, `expected a list of strings, got ${describe(v)}`);
    return null;
  }
  for (let i = 0; i < v.length; i++) {
    if (typeof v[i] !== 'string') {
      p.add(`${path}[${i}]`, `expected a string, got ${describe(v[i])}`);
      return null;
    }
  }
  return v as string[];
}

export function list(v: unknown, path: string, p: Problems): unknown[] | null {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    p.add(path, `expected a list, got ${describe(v)}`);
    return null;
  }
  return v;
}

export function boolList(v: unknown, path: string, p: Problems, length: number): (boolean | null)[] | null {
  if (v === undefined || v === null) return new Array<boolean | null>(length).fill(null);
  if (Array.isArray(v)) {
    if (v.length > length) {
      p.add(path, `has ${v.length} values but the axis has only ${length}`);
      return null;
    }
    const out: (boolean | null)[] = [];
    for (let i = 0; i < length; i++) {
      const x = i < v.length ? v[i] : null;
      if (x === null || x === undefined) out.push(null);
      else if (typeof x === 'boolean') out.push(x);
      else if (x === 0 || x === 1) out.push(x === 1);
      else {
        p.add(`${path}[${i}]`, `expected true, false or null, got ${describe(x)}`);
        return null;
      }
    }
    return out;
  }
  const nums = numbers(v, path, p, length, 'uint8');
  return nums && nums.map((x) => (Number.isNaN(x) ? null : x !== 0));
}

export function fraction(values: number[], path: string, p: Problems): void {
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (!Number.isNaN(x) && (x < 0 || x > 1)) {
      p.add(`${path}[${i}]`, `is ${x}; fractions and accuracies must lie in [0, 1]`);
      return;
    }
  }
}
