// Display bundles of the values a notebook looks at: images as image/png, tensors as a statistics summary with
// a heatmap (and image/png when image-shaped), arquero tables as HTML. PNGs are decoded and checked by pixel.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';
import { mimeBundle } from '../../kernel/display';
import { initEngine, shutdownEngine } from '../../src/engine/backend';
import { solidImage } from '../../src/io/image';

const png = (b64: unknown) => PNG.sync.read(Buffer.from(String(b64), 'base64'));
const pixel = (p: PNG, x: number, y: number) => [...p.data.subarray((y * p.width + x) * 4, (y * p.width + x) * 4 + 3)];
const htmlPng = (html: unknown) => png(/data:image\/png;base64,([A-Za-z0-9+/=]+)/.exec(String(html))![1]);

let baseline = 0;
// The engine a kernel runs on (a bare tfjs-core would fall back to its CPU backend and print its banner).
before(async () => {
  await initEngine();
  baseline = tf.memory().numTensors;
});
after(() => {
  assert.equal(tf.memory().numTensors, baseline, 'no tensors leaked');
  shutdownEngine();
});

test('an RgbImage (hs.solidImage) displays as image/png with its pixels', () => {
  const img = solidImage(5, 3, [200, 10, 30]);
  img.data.set([0, 255, 0], (2 * 5 + 4) * 3); // bottom-right pixel green
  const b = mimeBundle(img);
  assert.equal(b['text/plain'], 'RgbImage 5×3');
  const p = png(b['image/png']);
  assert.deepEqual([p.width, p.height], [5, 3]);
  assert.deepEqual(pixel(p, 0, 0), [200, 10, 30]);
  assert.deepEqual(pixel(p, 4, 2), [0, 255, 0]);
});

test('a CHW float image (what vision towers take) displays min–max stretched', () => {
  const data = new Float32Array(3 * 2 * 2).fill(-1);
  data[0] = 1; // red channel, pixel (0, 0)
  const p = png(mimeBundle({ channels: 3, height: 2, width: 2, data })['image/png']);
  assert.deepEqual(pixel(p, 0, 0), [255, 0, 0]);
  assert.deepEqual(pixel(p, 1, 1), [0, 0, 0]);
});

test('an image-shaped tensor ([H, W, 3] in 0..255) displays as image/png plus its summary', () => {
  const t = tf.tensor3d([[[255, 0, 0], [0, 0, 255]], [[0, 0, 0], [255, 255, 255]]], [2, 2, 3], 'int32');
  const b = mimeBundle(t);
  t.dispose();
  const p = png(b['image/png']);
  assert.deepEqual([p.width, p.height], [2, 2]);
  assert.deepEqual(pixel(p, 0, 0), [255, 0, 0]);
  assert.deepEqual(pixel(p, 1, 0), [0, 0, 255]);
  assert.deepEqual(pixel(p, 1, 1), [255, 255, 255]);
  assert.match(String(b['text/plain']), /^Tensor \[2, 2, 3\] int32: min 0, max 255/);
});

test('a tensor displays shape, dtype and statistics, with a heatmap of its last two axes', () => {
  const t = tf.tensor3d([1, 2, 3, 4, 5, 6, 100, 100, 100, 100, 100, 100], [2, 3, 2]);
  const b = mimeBundle(t);
  t.dispose();
  assert.match(String(b['text/plain']), /^Tensor \[2, 3, 2\] float32: min 1, max 100, mean 51\.7500, std 48\.2651/);
  assert.match(String(b['text/plain']), /\n\[1, 2, 3, 4, 5, 6, 100, 100, …\]$/);
  const html = String(b['text/html']);
  assert.match(html, /<th[^>]*>shape<\/th><td[^>]*>\[2, 3, 2\]<\/td>/);
  assert.match(html, /slice \[0, :, :\]/);
  assert.equal(b['image/png'], undefined, 'not image-shaped');
  // The first [3 × 2] slice: values 1..6 over the whole tensor's range, so dark (viridis' low end), increasing.
  const p = htmlPng(html);
  assert.deepEqual([p.width, p.height], [2, 3]);
  assert.deepEqual(pixel(p, 0, 0), [68, 1, 84]);
  assert.ok(pixel(p, 1, 2)[1] > pixel(p, 0, 0)[1], 'larger values are lighter');
});

test('non-finite values are counted; a disposed tensor says so', () => {
  const t = tf.tensor1d([1, NaN, 3, Infinity]);
  const b = mimeBundle(t);
  assert.match(String(b['text/plain']), /min 1, max 3, mean 2, std 1, 2 non-finite/);
  t.dispose();
  assert.equal(mimeBundle(t)['text/plain'], 'Tensor [4] float32 (disposed)');
});

test('an arquero table displays as an HTML table with its size', () => {
  const aq = require('arquero') as { from(rows: object[]): unknown };
  const b = mimeBundle(aq.from(Array.from({ length: 25 }, (_, i) => ({ layer: i, effect: i / 10 }))));
  const html = String(b['text/html']);
  assert.match(html, /<table>/);
  assert.equal((html.match(/<tr>/g) ?? []).length, 21); // header + the first 20 rows
  assert.match(html, /25 rows × 2 columns; the first 20 shown/);
});
