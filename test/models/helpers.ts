// Shared helpers for model tests: fixture folders, nested-array flattening, masked max-abs differences.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

import { FIXTURES } from '../fixtures/paths';
export { FIXTURES };

export function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

export function readJson<T = Record<string, any>>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

/** Every fixture-format folder whose config has one of these model types (so new folders are tested too). */
export function fixtureFolders(modelTypes: string[]): string[] {
  if (!existsSync(FIXTURES)) return [];
  return readdirSync(FIXTURES)
    .filter((d) => existsSync(path.join(FIXTURES, d, 'outputs.json')) && existsSync(path.join(FIXTURES, d, 'config.json')))
    .filter((d) => modelTypes.includes(readJson(path.join(FIXTURES, d, 'config.json')).model_type));
}

export function flat(nested: unknown): Float32Array {
  const out: number[] = [];
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) for (const y of x) walk(y);
    else out.push(x as number);
  };
  walk(nested);
  return Float32Array.from(out);
}

/** max |a - b|; `rowMask` (one 0/1 per row of length `rowLen`) skips rows such as padding positions. */
export function maxDiff(a: tf.Tensor | Float32Array, b: unknown, rowMask?: number[], rowLen?: number): number {
  const x = a instanceof Float32Array ? a : (a.dataSync() as Float32Array);
  const y = b instanceof Float32Array ? b : flat(b);
  if (x.length !== y.length) return Infinity;
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    if (rowMask && rowLen && !rowMask[Math.floor(i / rowLen)]) continue;
    const d = Math.abs(x[i] - y[i]);
    if (!(d <= m)) m = d; // NaN propagates as a failure
  }
  return m;
}

export function pixels(nested: unknown): tf.Tensor {
  const shape: number[] = [];
  let y: unknown = nested;
  while (Array.isArray(y)) {
    shape.push(y.length);
    y = y[0];
  }
  return tf.tensor(flat(nested), shape);
}
