// Shared loaders for the HF reference fixtures used by the io tests.
import { readFileSync } from 'fs';
import * as path from 'path';

import { FIXTURES } from '../fixtures/paths';
export { FIXTURES };

type Json = Record<string, unknown>;
const cache = new Map<string, Json>();

export function fixtureJson(folder: string, file: string): Json {
  const p = path.join(FIXTURES, folder, file);
  let v = cache.get(p);
  if (!v) {
    v = JSON.parse(readFileSync(p, 'utf8')) as Json;
    cache.set(p, v);
  }
  return v;
}

/** Flattens nested number arrays and rounds each value to float32 (the fixtures' values are float32). */
export function flatF32(nested: unknown): Float32Array {
  const out: number[] = [];
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) for (const y of x) walk(y);
    else out.push(x as number);
  };
  walk(nested);
  return Float32Array.from(out);
}

/** Number of positions where two arrays differ (also fails on length mismatch via -1). */
export function countDiffs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return -1;
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}
