// Fuzzed safetensors files (headers and offsets) against SafetensorsFile: truncated files, overlapping and
// out-of-range offsets, huge shapes, unknown dtypes, non-UTF-8 and deeply nested headers, header lengths past
// the file. Every case opens to a file whose tensors all read back, or fails with one CheckpointError.
// Allocation bound: a tensor the reader accepts lies inside the file, so no read allocates more than the
// file's size (a huge declared shape is refused from the header, before any allocation).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { CheckpointError } from '../../src/errors';
import { FLOAT_DTYPES, SafetensorsFile, dtypeBytes, type Dtype } from '../../src/io/safetensors';
import { FUZZ_RUNS, FUZZ_SEED, FUZZ_TEST_TIMEOUT_MS, fuzzParams, settle } from './fuzz';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopscope-fuzz-st-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const DTYPES: Dtype[] = ['F32', 'F16', 'BF16', 'I64', 'I32', 'U8', 'BOOL', 'F64', 'F8_E4M3'];
const dim = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 6 }) },
  { weight: 1, arbitrary: fc.constantFrom(2 ** 31, 2 ** 40, 2 ** 53 - 1, 2 ** 53, 1e300, -1, 1.5, Number.NaN) },
  { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 3 }), fc.constant(null)) as fc.Arbitrary<unknown> },
);
const tensorSpec = fc.record({
  name: fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__metadata__', 'w', 'model.layers.0.weight', '')),
  dtype: fc.oneof({ weight: 8, arbitrary: fc.constantFrom<unknown>(...DTYPES) }, { weight: 1, arbitrary: fc.constantFrom<unknown>('F128', 'f32', '', 7, null) }),
  shape: fc.oneof({ weight: 9, arbitrary: fc.array(dim, { maxLength: 4 }) }, { weight: 1, arbitrary: fc.constantFrom<unknown>('3', null, {}, [[2]]) }),
  // How data_offsets are made: laid out after the previous tensor (valid), shifted into it (overlap),
  // or arbitrary numbers.
  layout: fc.constantFrom('next', 'next', 'next', 'overlap', 'random', 'swapped', 'short'),
  random: fc.tuple(fc.oneof(fc.nat(600), fc.constantFrom(-1, 2 ** 53, 1e300, 0.5)), fc.oneof(fc.nat(600), fc.constantFrom(-1, 2 ** 53, 1e300, 0.5))),
});
const fileSpec = fc.record({
  // Half the cases are well-formed files (so reads are exercised too), half carry the defects below.
  clean: fc.boolean(),
  tensors: fc.array(tensorSpec, { maxLength: 5 }),
  metadata: fc.oneof(fc.constant(undefined), fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }), fc.constant({ a: 1 }), fc.constant([])),
  headerForm: fc.constantFrom('json', 'json', 'json', 'json', 'truncated-json', 'non-utf8', 'nested', 'not-object', 'empty'),
  nestDepth: fc.integer({ min: 1, max: 20_000 }),
  lengthField: fc.constantFrom('exact', 'exact', 'exact', 'exact', 'past-end', 'huge', 'zero', 'short'),
  extraData: fc.nat(64),
  truncateAt: fc.oneof({ weight: 4, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.nat(400) }),
  flips: fc.array(fc.tuple(fc.nat(1000), fc.integer({ min: 1, max: 255 })), { maxLength: 3 }),
  seed: fc.nat(),
});

type FileSpec = typeof fileSpec extends fc.Arbitrary<infer T> ? T : never;

function cleaned(s: FileSpec): FileSpec {
  const small = (d: unknown) => (typeof d === 'number' && Number.isInteger(d) && d >= 0 && d <= 6 ? d : 2);
  return {
    ...s, headerForm: 'json', lengthField: 'exact', truncateAt: -1, flips: [],
    metadata: typeof s.metadata === 'object' && !Array.isArray(s.metadata) && s.metadata !== null && Object.values(s.metadata).every((v) => typeof v === 'string') ? s.metadata : undefined,
    tensors: s.tensors.map((t, i) => ({
      ...t, name: `t${i}.${t.name}`, layout: 'next',
      dtype: (DTYPES as unknown[]).includes(t.dtype) ? t.dtype : 'F32',
      shape: Array.isArray(t.shape) ? t.shape.map(small) : [3],
    })),
  };
}

function build(spec: FileSpec): Buffer {
  const s = spec.clean ? cleaned(spec) : spec;
  const header: Record<string, unknown> = {};
  if (s.metadata !== undefined) header.__metadata__ = s.metadata;
  let offset = 0;
  for (const t of s.tensors) {
    const bytes = typeof t.dtype === 'string' && (DTYPES as string[]).includes(t.dtype) ? dtypeBytes(t.dtype as Dtype) : 4;
    const numel = Array.isArray(t.shape) ? t.shape.reduce((a: number, d) => a * (typeof d === 'number' ? d : 1), 1) : 1;
    const len = Number.isFinite(numel) && numel >= 0 && numel < 4096 ? numel * bytes : 16;
    let offs: unknown;
    if (t.layout === 'next') offs = [offset, offset + len];
    else if (t.layout === 'overlap') offs = [Math.max(0, offset - 2), Math.max(0, offset - 2) + len];
    else if (t.layout === 'swapped') offs = [offset + len, offset];
    else if (t.layout === 'short') offs = [offset];
    else offs = t.random;
    if (t.layout === 'next' || t.layout === 'overlap') offset = (offs as number[])[1];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: offs };
  }
  let text: Buffer;
  switch (s.headerForm) {
    case 'truncated-json': {
      const j = JSON.stringify(header);
      text = Buffer.from(j.slice(0, Math.floor(j.length / 2)));
      break;
    }
    case 'non-utf8':
      text = Buffer.concat([Buffer.from('{"a'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('": 1}')]);
      break;
    case 'nested':
      text = Buffer.from('['.repeat(s.nestDepth) + ']'.repeat(s.nestDepth));
      break;
    case 'not-object':
      text = Buffer.from(JSON.stringify([header]));
      break;
    case 'empty':
      text = Buffer.alloc(0);
      break;
    default:
      text = Buffer.from(JSON.stringify(header));
  }
  const data = Buffer.alloc(offset + s.extraData, 0x3c); // 0x3c3c3c3c: finite in every float dtype
  const prefix = Buffer.alloc(8);
  const declared = { exact: BigInt(text.length), 'past-end': BigInt(text.length + data.length + 1), huge: 2n ** 64n - 1n, zero: 0n, short: BigInt(Math.max(0, text.length - 3)) }[s.lengthField];
  prefix.writeBigUInt64LE(declared);
  let file = Buffer.concat([prefix, text, data]);
  for (const [at, x] of s.flips) if (file.length) file[at % file.length] ^= x;
  if (s.truncateAt >= 0) file = file.subarray(0, Math.min(file.length, s.truncateAt));
  return file;
}

test(`safetensors: ${FUZZ_RUNS} fuzzed files each open and read, or fail with one CheckpointError`, { timeout: FUZZ_TEST_TIMEOUT_MS }, (t) => {
  const file = path.join(dir, 'fuzz.safetensors');
  let opened = 0;
  let tensorsRead = 0;
  fc.assert(
    fc.property(fileSpec, (s) => {
      const bytes = build(s);
      fs.writeFileSync(file, bytes);
      const r = settle(() => SafetensorsFile.open(file), [CheckpointError], 'open');
      if ('error' in r) {
        assert.ok(r.error.message.startsWith(file), `the error names the file: ${r.error.message}`);
        return;
      }
      const st = r.value;
      opened++;
      try {
        for (const e of st.entries.values()) {
          // The allocation bound: whatever the header says, an accepted tensor lies inside the file.
          assert.ok(e.byteOffset + e.byteLength <= bytes.length, `${e.name}: [${e.byteOffset}, +${e.byteLength}] is past the file (${bytes.length} bytes)`);
          assert.equal(st.readBytes(e.name).length, e.byteLength);
          if ((FLOAT_DTYPES as readonly string[]).includes(e.dtype)) {
            const numel = e.shape.reduce((a, d) => a * d, 1);
            assert.equal(st.readF32(e.name).length, numel);
            assert.equal(st.readCompact(e.name).data.length, numel);
            if (e.shape.length === 2) assert.equal(st.readF32(e.name, { transpose2d: true }).length, numel);
          } else settle(() => st.readF32(e.name), [CheckpointError], `readF32 of ${e.dtype}`);
          tensorsRead++;
        }
      } finally {
        st.close();
      }
    }),
    fuzzParams(),
  );
  // The generator must reach both outcomes, or the property says little.
  assert.ok(opened > FUZZ_RUNS / 20, `only ${opened} of ${FUZZ_RUNS} files were valid`);
  assert.ok(opened < FUZZ_RUNS, 'no file was refused');
  assert.ok(tensorsRead > 0);
  t.diagnostic(`${FUZZ_RUNS} cases (seed ${FUZZ_SEED}): ${opened} files opened (${tensorsRead} tensors read), ${FUZZ_RUNS - opened} refused with a CheckpointError`);
});
