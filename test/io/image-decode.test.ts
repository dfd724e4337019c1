// Decoding: exact for PNG (written with pngjs) and lossless WebP, sizes for JPEG, and one clear
// InputError for each kind of bad file, raised before any pixel buffer is allocated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { PNG } from 'pngjs';
import { decodeImage, encodeImage, sniffImageHeader, RgbImage } from '../../src/io/image';
import { InputError } from '../../src/errors';
import { countDiffs } from './vision-fixtures';

function pattern(w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 73 + ((i / 3) | 0) * 11) & 255;
  return { width: w, height: h, data };
}

/** RGBA buffer for pngjs from RGB + an alpha function. */
function pngBytes(img: RgbImage, colorType: 0 | 2 | 6, alpha: (i: number) => number = () => 255): Buffer {
  const png = new PNG({ width: img.width, height: img.height });
  for (let i = 0; i < img.width * img.height; i++) {
    png.data[i * 4] = img.data[i * 3];
    png.data[i * 4 + 1] = img.data[i * 3 + 1];
    png.data[i * 4 + 2] = img.data[i * 3 + 2];
    png.data[i * 4 + 3] = alpha(i);
  }
  return PNG.sync.write(png, { colorType });
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

/** A PNG that is only a (valid, CRC-correct) header claiming the given size. */
function pngHeaderOnly(w: number, h: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), pngChunk('IHDR', ihdr), pngChunk('IEND', Buffer.alloc(0))]);
}

/** SOI + baseline SOF0 claiming the given size, nothing else. */
function jpegHeaderOnly(w: number, h: number): Buffer {
  const sof = Buffer.from([0xff, 0xc0, 0x00, 0x11, 0x08, h >> 8, h & 255, w >> 8, w & 255, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), sof, Buffer.from([0xff, 0xd9])]);
}

test('RGB PNG written with pngjs decodes to the exact pixels', async () => {
  const img = pattern(13, 7);
  const got = await decodeImage(pngBytes(img, 2));
  assert.deepEqual([got.width, got.height], [13, 7]);
  assert.equal(countDiffs(got.data, img.data), 0);
});

test('RGBA PNG: alpha is dropped, not composited (PIL convert("RGB"))', async () => {
  const img = pattern(9, 4);
  const got = await decodeImage(pngBytes(img, 6, (i) => (i * 37) & 255));
  assert.equal(countDiffs(got.data, img.data), 0);
});

test('greyscale PNG becomes RGB with equal channels', async () => {
  const g: RgbImage = { width: 5, height: 3, data: new Uint8Array(45) };
  for (let i = 0; i < 15; i++) g.data.fill(i * 17, i * 3, i * 3 + 3);
  const got = await decodeImage(pngBytes(g, 0));
  assert.equal(countDiffs(got.data, g.data), 0);
});

test('JPEG made with sharp round-trips its size, pixels close; header sniffing agrees', async () => {
  const img = pattern(64, 48);
  const jpg = await encodeImage(img, 'jpeg', 95);
  assert.deepEqual(sniffImageHeader(jpg), { format: 'jpeg', width: 64, height: 48 });
  const got = await decodeImage(jpg);
  assert.deepEqual([got.width, got.height, got.data.length], [64, 48, 64 * 48 * 3]);
  const flat = await decodeImage(await encodeImage({ width: 16, height: 16, data: new Uint8Array(768).fill(128) }, 'jpeg'));
  assert.ok(flat.data.every((v) => Math.abs(v - 128) <= 1));
});

test('file paths decode; header sniffing reads PNG and WebP sizes', async () => {
  const img = pattern(21, 11);
  const png = await encodeImage(img, 'png');
  assert.deepEqual(sniffImageHeader(png), { format: 'png', width: 21, height: 11 });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hopscope-img-'));
  try {
    const p = path.join(dir, 'x.png');
    writeFileSync(p, png);
    assert.equal(countDiffs((await decodeImage(p)).data, img.data), 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const webp = await encodeImage(img, 'webp', 100);
  const h = sniffImageHeader(webp);
  assert.deepEqual([h?.format, h?.width, h?.height], ['webp', 21, 11]);
});

test('truncated JPEG -> InputError naming truncation', async () => {
  const jpg = await encodeImage(pattern(64, 48), 'jpeg');
  await assert.rejects(decodeImage(jpg.subarray(0, jpg.length >> 1)), (e: unknown) => e instanceof InputError && /truncated or corrupt/.test(e.message));
});

test('empty file, zero-size header, garbage and missing file -> InputError each', async () => {
  await assert.rejects(decodeImage(new Uint8Array(0)), (e: unknown) => e instanceof InputError && /empty/.test(e.message));
  await assert.rejects(decodeImage(pngHeaderOnly(0, 10)), (e: unknown) => e instanceof InputError && /zero-size/.test(e.message));
  await assert.rejects(decodeImage(Buffer.from('not an image at all')), (e: unknown) => e instanceof InputError && /not a readable image/.test(e.message));
  await assert.rejects(decodeImage('/nonexistent/dir/img.png'), (e: unknown) => e instanceof InputError && /cannot be read/.test(e.message));
});

test('huge dimensions in the header are refused before decoding (PNG, JPEG, custom limit)', async () => {
  await assert.rejects(decodeImage(pngHeaderOnly(100000, 100000)), (e: unknown) => e instanceof InputError && /100000x100000.*exceeds the limit/.test(e.message));
  await assert.rejects(decodeImage(jpegHeaderOnly(60000, 60000)), (e: unknown) => e instanceof InputError && /exceeds the limit/.test(e.message));
  const png = await encodeImage(pattern(64, 48), 'png');
  await assert.rejects(decodeImage(png, { maxPixels: 1000 }), (e: unknown) => e instanceof InputError && /exceeds the limit of 1000/.test(e.message));
});
