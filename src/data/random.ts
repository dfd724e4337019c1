// Seeded pseudo-random numbers for sampling and the toyworld generator: mulberry32 (Tommy Ettinger's
// 32-bit generator), chosen because it is tiny, fast and integer-only, so streams are identical on every
// platform and Node version (no Math.random, no transcendental functions).

/** A stream of uniform numbers in [0, 1). */
export type Rng = () => number;

/** mulberry32: a 32-bit state generator; the same seed always yields the same stream. */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a over the UTF-16 code units of the parts, so a sub-stream can be keyed by names ("seed/s_uri/view"). */
export function hashSeed(...parts: Array<string | number>): number {
  let h = 0x811c9dc5;
  const text = parts.join('\u0000');
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** An integer in [lo, hi] inclusive. */
export function randInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** One element, uniformly. */
export function pick<T>(rng: Rng, items: readonly T[]): T {
  if (items.length === 0) throw new RangeError('pick: empty list');
  return items[Math.floor(rng() * items.length)];
}

/** A shuffled copy (Fisher-Yates). */
export function shuffled<T>(rng: Rng, items: readonly T[]): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** k items without replacement, kept in their original order (so a sample reads like the source file). */
export function sampleInOrder<T>(rng: Rng, items: readonly T[], k: number): T[] {
  if (k >= items.length) return items.slice();
  const chosen = shuffled(rng, items.map((_, i) => i))
    .slice(0, k)
    .sort((a, b) => a - b);
  return chosen.map((i) => items[i]);
}
