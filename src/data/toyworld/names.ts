// Made-up words for the toyworld: names of people, places, works and companies, built from syllables so
// they look pronounceable, are at least 4 letters (so PopVQA's long-word rule sees them) and collide
// with no English word used in the templates.

import { type Rng, pick, randInt, shuffled } from '../random';

const ONSETS = ['b', 'd', 'f', 'g', 'h', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z', 'br', 'dr', 'st', 'th'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'a', 'e', 'o'];
const CODAS = ['', '', 'n', 'l', 'r', 's', 'k', 'th'];

/** Draws capitalised made-up words, never repeating one (case-insensitively) nor any reserved word. */
export class WordMint {
  private readonly used: Set<string>;

  constructor(
    private readonly rng: Rng,
    reserved: Iterable<string> = [],
  ) {
    this.used = new Set([...reserved].map((w) => w.toLowerCase()));
  }

  /** A fresh word of `syllables` syllables, 4 to 8 letters. */
  word(syllables = 2): string {
    for (let attempt = 0; attempt < 10000; attempt++) {
      let w = '';
      for (let s = 0; s < syllables; s++) {
        w += pick(this.rng, ONSETS) + pick(this.rng, VOWELS);
        if (s === syllables - 1 || randInt(this.rng, 0, 3) === 0) w += pick(this.rng, CODAS);
      }
      if (w.length < 4 || w.length > 8 || this.used.has(w)) continue;
      this.used.add(w);
      return w[0].toUpperCase() + w.slice(1);
    }
    throw new RangeError('WordMint: ran out of fresh words; raise the syllable count.');
  }

  words(count: number, syllables = 2): string[] {
    return Array.from({ length: count }, () => this.word(syllables));
  }
}

/**
 * Unique (first, second) index pairs for n items such that every first word is used about as often as
 * every other, and no two items share both words. Item k uses first word k mod P and second word
 * (k mod P + offset[round]) mod Q with distinct offsets per round, so pairs never repeat as long as
 * the number of rounds ceil(n / P) is at most Q.
 */
export function balancedPairs(rng: Rng, n: number, poolA: number, poolB: number): Array<[number, number]> {
  const rounds = Math.ceil(n / poolA);
  if (rounds > poolB) throw new RangeError(`balancedPairs: ${n} items need ${rounds} rounds but only ${poolB} second words.`);
  const offsets = shuffled(rng, Array.from({ length: poolB }, (_, i) => i));
  return Array.from({ length: n }, (_, k) => {
    const a = k % poolA;
    return [a, (a + offsets[Math.floor(k / poolA)]) % poolB] as [number, number];
  });
}

/** Pool size so each name word is shared by about four entities (at least two) and pairs stay unique. */
export function poolSize(n: number): number {
  return Math.max(2, Math.ceil(n / 4), Math.ceil(Math.sqrt(n)));
}
