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

/** Number of positions where two arrays differ (also fails on length mismatch via -1). */
export function countDiffs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return -1;
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}
