import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CheckpointError } from '../../src/errors';
import { f32ToBf16, transpose2d } from '../../src/io/dtype';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../../src/io/safetensors';

import { FIXTURES } from '../fixtures/paths';
const FOLDERS = fs
  .readdirSync(FIXTURES)
  .filter((d) => fs.existsSync(path.join(FIXTURES, d, 'tensor_names.txt')))
  .sort();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-safetensors-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function tensorNames(folder: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const line of fs.readFileSync(path.join(FIXTURES, folder, 'tensor_names.txt'), 'utf8').split('\n')) {
    const m = /^(\S+) \[(.*)\]$/.exec(line.trim());
    if (m) out.set(m[1], m[2].trim() === '' ? [] : m[2].split(',').map((s) => Number(s.trim())));
  }
  return out;
}

/** A hand-made safetensors file: any header (object or raw text) and data bytes. */
function rawFile(name: string, header: unknown, data: Uint8Array = new Uint8Array(0), headerLen?: bigint): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(headerLen ?? BigInt(json.length));
  const p = path.join(tmp, name);
  fs.writeFileSync(p, Buffer.concat([prefix, json, data]));
  return p;
}

/** Asserts that opening (or running `fn` on) gives exactly one CheckpointError matching every pattern. */
function assertCheckpointError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

function openThen(p: string, fn: (f: SafetensorsFile) => void): void {
  const f = SafetensorsFile.open(p);
  try {
    fn(f);
  } finally {
    f.close();
  }
}

test('every fixture file opens with the shapes of tensor_names.txt', () => {
  assert.ok(FOLDERS.length >= 7, `fixtures under ${FIXTURES}`);
  for (const folder of FOLDERS) {
    const want = tensorNames(folder);
    for (const [file, dtype] of [['model.safetensors', 'F32'], ['model-bf16.safetensors', 'BF16']] as const) {
      openThen(path.join(FIXTURES, folder, file), (f) => {
        assert.deepEqual([...f.entries.keys()].sort(), [...want.keys()].sort(), `${folder}/${file}`);
        for (const [name, shape] of want) {
          const e = f.entry(name);
          assert.deepEqual(e.shape, shape, `${folder}/${file} ${name}`);
          assert.equal(e.dtype, dtype);
        }
        assert.equal(typeof f.metadata.fixture, 'string'); // A's derived folders reuse A's file and its name
      });
    }
  }
});

test('BF16 fixtures are the round-to-nearest-even of the F32 ones', () => {
  for (const folder of FOLDERS) {
    const f32 = SafetensorsFile.open(path.join(FIXTURES, folder, 'model.safetensors'));
    const bf16 = SafetensorsFile.open(path.join(FIXTURES, folder, 'model-bf16.safetensors'));
    try {
      for (const name of f32.entries.keys()) {
        const a = f32.readF32(name);
        const b = bf16.readF32(name);
        assert.equal(a.length, b.length);
        for (let i = 0; i < a.length; i++) {
          // bf16 keeps 8 significant bits: rounding moves a value by at most half an ulp, 2^-8 of its magnitude.
          if (Math.abs(a[i] - b[i]) > Math.abs(a[i]) * 2 ** -8) assert.fail(`${folder} ${name}[${i}]: ${a[i]} vs ${b[i]}`);
        }
        const compact = bf16.readCompact(name);
        assert.equal(compact.dtype, 'BF16');
        assert.deepEqual(compact.data, f32ToBf16(a), `${folder} ${name}: bits`);
      }
    } finally {
      f32.close();
      bf16.close();
    }
  }
});

test('transpose2d reads equal a transpose of the plain read, in F32, BF16 and compact form', () => {
  for (const file of ['model.safetensors', 'model-bf16.safetensors']) {
    openThen(path.join(FIXTURES, 'llava_tiny_A', file), (f) => {
      let n = 0;
      for (const [name, e] of f.entries) {
        if (e.shape.length !== 2) continue;
        const [rows, cols] = e.shape;
        assert.deepEqual(f.readF32(name, { transpose2d: true }), transpose2d(f.readF32(name), rows, cols), name);
        const c = f.readCompact(name, { transpose2d: true });
        assert.deepEqual(c.shape, [cols, rows]);
        assert.deepEqual(c.data, transpose2d(f.readCompact(name).data, rows, cols));
        n++;
      }
      assert.ok(n > 20);
    });
  }
});

test('F32 data is read straight into the returned array; readBytes gives the raw bytes', () => {
  openThen(path.join(FIXTURES, 'llama_tiny_C', 'model.safetensors'), (f) => {
    const e = f.entry('model.embed_tokens.weight');
    const bytes = f.readBytes(e.name);
    assert.equal(bytes.length, e.byteLength);
    const viaBytes = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    const x = f.readF32(e.name);
    assert.deepEqual(x, viaBytes);
    assert.equal(x.byteOffset, 0);
    assert.equal(x.buffer.byteLength, e.byteLength);
  });
});

test('readF32 into a given array: plain, transposed and BF16-converted reads fill it and return it; a wrong size is refused', () => {
  for (const file of ['model.safetensors', 'model-bf16.safetensors']) {
    openThen(path.join(FIXTURES, 'llava_tiny_A', file), (f) => {
      const name = [...f.entries.keys()].find((n) => f.entry(n).shape.length === 2)!;
      const n = f.entry(name).shape.reduce((a, b) => a * b, 1);
      for (const transpose2d of [false, true]) {
        const into = new Float32Array(n).fill(Number.NaN);
        const got = f.readF32(name, { transpose2d, into });
        assert.equal(got, into, 'the destination itself is returned');
        assert.deepEqual(into, f.readF32(name, { transpose2d }), `${file} ${name} transpose2d=${transpose2d}`);
      }
      assertCheckpointError(() => f.readF32(name, { into: new Float32Array(n - 1) }), new RegExp(`'${name.replace(/\./g, '\\.')}' has ${n} values; the destination holds ${n - 1}`));
    });
  }
});

test('writeSafetensors → open round-trips mixed dtypes, scalars, empty tensors and metadata', () => {
  const tensors: Record<string, TensorToWrite> = {
    'b.half': { dtype: 'F16', shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x7c00]) },
    'a.weight': { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, -6.5]) },
    'c.brain': { dtype: 'BF16', shape: [2, 2], data: new Uint16Array([0x3f80, 0x4000, 0xbf80, 0x0000]) },
    scalar: { dtype: 'F32', shape: [], data: new Float32Array([42]) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  };
  const p = path.join(tmp, 'roundtrip.safetensors');
  writeSafetensors(p, tensors, { format: 'pt', note: 'hopscope test' });
  const buf = fs.readFileSync(p);
  assert.equal(Number(buf.readBigUInt64LE(0)) % 8, 0, 'header padded to 8 bytes');
  openThen(p, (f) => {
    assert.deepEqual(f.metadata, { format: 'pt', note: 'hopscope test' });
    // Wider dtypes first, then names: every tensor is aligned to its element size.
    assert.deepEqual([...f.entries.keys()], ['a.weight', 'empty', 'scalar', 'b.half', 'c.brain']);
    for (const e of f.entries.values()) {
      assert.equal((e.byteOffset - 8 - Number(buf.readBigUInt64LE(0))) % (e.dtype === 'F32' ? 4 : 2), 0);
    }
    assert.deepEqual(f.readF32('a.weight'), tensors['a.weight'].data);
    assert.deepEqual(f.readF32('a.weight', { transpose2d: true }), new Float32Array([1, 4, 2, 5, 3, -6.5]));
    assert.deepEqual(Array.from(f.readF32('b.half')), [1, -2, Infinity]);
    assert.deepEqual(Array.from(f.readF32('c.brain')), [1, 2, -1, 0]);
    assert.deepEqual(f.readCompact('c.brain').data, tensors['c.brain'].data);
    assert.deepEqual(f.entry('scalar').shape, []);
    assert.deepEqual(Array.from(f.readF32('scalar')), [42]);
    assert.equal(f.readF32('empty').length, 0);
  });
});

test('rewriting a fixture reproduces it byte for byte', () => {
  const src = path.join(FIXTURES, 'llava_tiny_A', 'model.safetensors');
  const tensors: Record<string, TensorToWrite> = {};
  let metadata: Record<string, string> = {};
  openThen(src, (f) => {
    metadata = { ...f.metadata };
    for (const name of f.entries.keys()) tensors[name] = f.readCompact(name);
  });
  const p = path.join(tmp, 'rewrite.safetensors');
  writeSafetensors(p, tensors, metadata);
  assert.ok(fs.readFileSync(p).equals(fs.readFileSync(src)));
});

test('writeSafetensors rejects data that does not match its shape or dtype', () => {
  const p = path.join(tmp, 'bad-write.safetensors');
  assertCheckpointError(
    () => writeSafetensors(p, { w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }),
    /'w'/, /4 elements but data has 3/,
  );
  assertCheckpointError(
    () => writeSafetensors(p, { w: { dtype: 'BF16', shape: [2], data: new Float32Array(2) } }),
    /BF16 data must be a Uint16Array/,
  );
  assert.ok(!fs.existsSync(p));
});

// ---------------------------------------------------------------------------------------------
// Corrupt files: exactly one CheckpointError each, naming the file and the problem.

const f32x4 = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);

test('corrupt: file shorter than 8 bytes', () => {
  const p = path.join(tmp, 'tiny.safetensors');
  fs.writeFileSync(p, Buffer.from([1, 2, 3]));
  assertCheckpointError(() => SafetensorsFile.open(p), /tiny\.safetensors/, /3 bytes, shorter than the 8-byte header length/);
});

test('corrupt: header length past end of file', () => {
  const p = rawFile('hdrlen.safetensors', { w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32x4, 1n << 40n);
  assertCheckpointError(() => SafetensorsFile.open(p), /hdrlen\.safetensors/, /header length 1099511627776 is past the end of the file/);
});

test('corrupt: header is not JSON, or not an object', () => {
  const p = rawFile('notjson.safetensors', '{"w": {"dtype": "F32", oops');
  assertCheckpointError(() => SafetensorsFile.open(p), /notjson\.safetensors/, /header is not valid UTF-8 JSON/);
  const q = rawFile('array.safetensors', '[1, 2]');
  assertCheckpointError(() => SafetensorsFile.open(q), /array\.safetensors/, /not an object/);
  const r = rawFile('meta.safetensors', { __metadata__: { n: 3 } });
  assertCheckpointError(() => SafetensorsFile.open(r), /__metadata__ must be an object of string values/);
});

test('corrupt: truncated file (data cut short)', () => {
  const whole = fs.readFileSync(path.join(FIXTURES, 'llama_tiny_C', 'model.safetensors'));
  const p = path.join(tmp, 'truncated.safetensors');
  fs.writeFileSync(p, whole.subarray(0, whole.length - 100));
  assertCheckpointError(() => SafetensorsFile.open(p), /truncated\.safetensors/, /tensor '/, /past the end of the data area/, /truncated/);
});

test('corrupt: offsets out of range', () => {
  const p = rawFile('range.safetensors', { w: { dtype: 'F32', shape: [4], data_offsets: [16, 32] } }, f32x4);
  assertCheckpointError(() => SafetensorsFile.open(p), /range\.safetensors/, /tensor 'w'/, /\[16, 32\] run past the end of the data area \(16 bytes\)/);
});

test('corrupt: overlapping or out-of-order offsets', () => {
  const data = new Uint8Array(32);
  const p = rawFile('overlap.safetensors', {
    a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
    b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] },
  }, data);
  assertCheckpointError(() => SafetensorsFile.open(p), /overlap\.safetensors/, /'a' \[0, 16\] and 'b' \[8, 24\] have overlapping data_offsets/);
  const q = rawFile('order.safetensors', { a: { dtype: 'F32', shape: [0], data_offsets: [16, 0] } }, data);
  assertCheckpointError(() => SafetensorsFile.open(q), /tensor 'a'/, /out of order/);
});

test('corrupt: unknown dtype', () => {
  const p = rawFile('dtype.safetensors', { w: { dtype: 'Q4_K', shape: [4], data_offsets: [0, 16] } }, f32x4);
  assertCheckpointError(() => SafetensorsFile.open(p), /dtype\.safetensors/, /tensor 'w'/, /unknown or unsupported dtype 'Q4_K'/, /F32, F16, BF16/);
});

test('corrupt: shape / byte-count mismatch', () => {
  const p = rawFile('count.safetensors', { w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 16] } }, f32x4);
  assertCheckpointError(() => SafetensorsFile.open(p), /count\.safetensors/, /tensor 'w'/, /\[2, 3\] × F32 needs 24 bytes but data_offsets \[0, 16\] hold 16/);
  const q = rawFile('shape.safetensors', { w: { dtype: 'F32', shape: [-4], data_offsets: [0, 16] } }, f32x4);
  assertCheckpointError(() => SafetensorsFile.open(q), /shape \[-4\] is not a list of non-negative integers/);
});

test('missing tensor, non-float reads, bad transpose and closed files are clear errors', () => {
  const ids = new Uint8Array(new BigInt64Array([0n, 1n, 2n]).buffer);
  const p = rawFile('ints.safetensors', { position_ids: { dtype: 'I64', shape: [1, 3], data_offsets: [0, 24] } }, ids);
  const f = SafetensorsFile.open(p);
  assert.deepEqual(Array.from(new BigInt64Array(f.readBytes('position_ids').buffer)), [0n, 1n, 2n]);
  assertCheckpointError(() => f.readF32('nope'), /ints\.safetensors/, /no tensor named 'nope'/);
  assertCheckpointError(() => f.readF32('position_ids'), /'position_ids' has dtype I64; readF32 reads only F32, F16, BF16/);
  f.close();
  f.close();
  assertCheckpointError(() => f.readBytes('position_ids'), /file is closed/);

  openThen(path.join(FIXTURES, 'llama_tiny_C', 'model.safetensors'), (g) => {
    assertCheckpointError(() => g.readF32('model.norm.weight', { transpose2d: true }), /'model\.norm\.weight' has shape \[64\]; transpose2d needs a rank-2 tensor/);
  });
  assertCheckpointError(() => SafetensorsFile.open(path.join(tmp, 'absent.safetensors')), /absent\.safetensors: no such safetensors file/);
});
