// Fuzzed image files against decodeImage (and the header sniffer it trusts): truncated and bit-flipped PNG,
// JPEG, WebP and GIF files, declared dimensions rewritten to huge or zero values, random bytes. Every case
// decodes to a consistent RGB image or fails with an InputError. Allocation bound: MAX_PIXELS; an image whose
// header declares more is refused from the header, before a decoder allocates pixels.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import fc from 'fast-check';
import sharp from 'sharp';
import { InputError } from '../../src/errors';
import { decodeImage, encodeImage } from '../../src/io/image/decode';
import { sniffImageHeader } from '../../src/io/image/header';
import { CASE_TIMEOUT_MS, FUZZ_RUNS, FUZZ_SEED, FUZZ_TEST_TIMEOUT_MS, fuzzParams, settleAsync } from './fuzz';

/** The fuzz cases' pixel bound: 256² is ample for the 8-24 px originals and keeps every case cheap. */
const MAX_PIXELS = 256 * 256;
const originals: { format: string; bytes: Uint8Array }[] = [];

before(async () => {
  for (const [w, h] of [[8, 8], [17, 5], [24, 24]]) {
    const data = new Uint8Array(w * h * 3).map((_, i) => (i * 37 + w) % 256);
    const img = { width: w, height: h, data };
    for (const format of ['png', 'jpeg', 'webp'] as const) originals.push({ format, bytes: await encodeImage(img, format) });
    const gif = await sharp(Buffer.from(data), { raw: { width: w, height: h, channels: 3 } }).gif().toBuffer();
    originals.push({ format: 'gif', bytes: new Uint8Array(gif) });
  }
});

/** Where each format declares width and height (big-endian u32 for PNG, u16 for JPEG's first SOF). */
function declareDims(bytes: Uint8Array, format: string, w: number, h: number): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (format === 'png' && bytes.length >= 24) {
    v.setUint32(16, w >>> 0);
    v.setUint32(20, h >>> 0);
  } else if (format === 'jpeg') {
    for (let o = 2; o + 9 <= bytes.length; o++)
      if (bytes[o] === 0xff && bytes[o + 1] >= 0xc0 && bytes[o + 1] <= 0xc2) {
        v.setUint16(o + 5, h & 0xffff);
        v.setUint16(o + 7, w & 0xffff);
        return;
      }
  } else if (format === 'gif' && bytes.length >= 10) {
    v.setUint16(6, w & 0xffff, true);
    v.setUint16(8, h & 0xffff, true);
  }
}

const mutation = fc.record({
  original: fc.nat(),
  truncateAt: fc.oneof({ weight: 2, arbitrary: fc.constant(-1) }, { weight: 2, arbitrary: fc.nat(2000) }),
  flips: fc.array(fc.tuple(fc.nat(5000), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }),
  dims: fc.oneof(
    { weight: 2, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(0, 1, 65535, 2 ** 31, 2 ** 32 - 1, 100_000), fc.constantFrom(0, 1, 65535, 2 ** 31, 2 ** 32 - 1, 100_000)) },
    { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: 70_000 }), fc.integer({ min: 0, max: 70_000 })) },
  ),
  random: fc.oneof({ weight: 9, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) }),
});

test(`images: ${FUZZ_RUNS} fuzzed image files decode to consistent RGB or fail with an InputError`, { timeout: FUZZ_TEST_TIMEOUT_MS }, async (t) => {
  let decoded = 0;
  let refusedFromHeader = 0;
  await fc.assert(
    fc.asyncProperty(mutation, async (m) => {
      const o = originals[m.original % originals.length];
      let bytes = m.random ?? new Uint8Array(o.bytes);
      if (!m.random) {
        if (m.dims) declareDims(bytes, o.format, m.dims[0], m.dims[1]);
        for (const [at, x] of m.flips) if (bytes.length) bytes[at % bytes.length] ^= x;
        if (m.truncateAt >= 0) bytes = bytes.subarray(0, m.truncateAt);
      }
      const header = sniffImageHeader(bytes); // never throws, whatever the bytes
      const r = await settleAsync(() => decodeImage(bytes, { maxPixels: MAX_PIXELS }), [InputError], `decodeImage(${o.format}, ${JSON.stringify({ ...m, random: m.random?.length })})`);
      if ('error' in r) {
        if (header && header.width * header.height > MAX_PIXELS) {
          assert.match(r.error.message, /exceeds the limit/, 'a huge declared size is refused from the header');
          refusedFromHeader++;
        }
        return;
      }
      const img = r.value;
      decoded++;
      assert.ok(img.width > 0 && img.height > 0 && img.width * img.height <= MAX_PIXELS, `${img.width}x${img.height}`);
      assert.equal(img.data.length, img.width * img.height * 3);
    }),
    fuzzParams({ timeout: CASE_TIMEOUT_MS }),
  );
  assert.ok(decoded > 0 && refusedFromHeader > 0, `decoded ${decoded}, refused from the header ${refusedFromHeader}: the generator must reach both`);
  t.diagnostic(`${FUZZ_RUNS} cases (seed ${FUZZ_SEED}): ${decoded} decoded, ${refusedFromHeader} refused from the header, ${FUZZ_RUNS - decoded - refusedFromHeader} refused by the decoder (InputError)`);
});
