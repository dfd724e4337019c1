// Deciding whether a generation answers a question (or names an entity): the PopVQA word-overlap rule,
// as in the reference code (utils.check_ans), and a stricter alias-aware whole-phrase alternative.

export type MatchRule = 'popvqa' | 'exact';

export interface MatchResult {
  correct: boolean;
  rule: MatchRule;
  /** The possible answer (or name) that matched. */
  matched?: string;
}

// Python's `\w` in a str pattern: letters, all numeric characters, underscore (combining marks excluded).
const WORD = /[\p{L}\p{N}_]+/gu;

/**
 * The words the PopVQA rule compares: NFKC, lower-case, `\b\w+\b`, longer than 3 characters
 * (code points, as Python's len counts them).
 */
export function popvqaWords(text: string): string[] {
  const words = text.normalize('NFKC').toLowerCase().match(WORD) ?? [];
  return words.filter((w) => [...w].length > 3);
}

/**
 * PopVQA rule for one answer: the distinct long words of the answer and the generation must share at
 * least 2, or at least 1 when the answer has fewer than 2 distinct long words. So an answer with no
 * long word ("USA", "Ra") can never match; use the 'exact' rule for those.
 */
export function popvqaMatch(generation: string, answer: string): boolean {
  const gen = new Set(popvqaWords(generation));
  const ans = new Set(popvqaWords(answer));
  const need = ans.size > 1 ? 2 : 1;
  let overlap = 0;
  for (const w of ans) if (gen.has(w)) overlap++;
  return overlap >= need;
}

/** Normal form for the exact rule: NFKC, lower-case, words joined by single spaces (punctuation dropped). */
export function normalizeForExact(text: string): string {
  return (text.normalize('NFKC').toLowerCase().match(WORD) ?? []).join(' ');
}

/** Exact rule for one answer: its normalised form appears in the generation's as a whole-word phrase. */
export function exactMatch(generation: string, answer: string): boolean {
  const ans = normalizeForExact(answer);
  if (ans === '') return false;
  return ` ${normalizeForExact(generation)} `.includes(` ${ans} `);
}

/**
 * Is the generation correct for any of the possible answers? The caller strips the prompt first
 * (the reference code's identification step scored prompt + generation, which lets prompt words match).
 */
export function matchAnswer(generation: string, possibleAnswers: readonly string[], rule: MatchRule = 'popvqa'): MatchResult {
  const test = rule === 'popvqa' ? popvqaMatch : rule === 'exact' ? exactMatch : undefined;
  if (!test) throw new RangeError(`matchAnswer: unknown rule '${String(rule)}'; use 'popvqa' or 'exact'.`);
  for (const answer of possibleAnswers) {
    if (test(generation, answer)) return { correct: true, rule, matched: answer };
  }
  return { correct: false, rule };
}

/** Identification: does the generation name the subject or one of its aliases (same rules as answers)? */
export function mentionsEntity(
  generation: string,
  subject: string,
  aliases: readonly string[] = [],
  rule: MatchRule = 'popvqa',
): MatchResult {
  return matchAnswer(generation, [subject, ...aliases], rule);
}
