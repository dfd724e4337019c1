// The toyworld's closed word-level vocabulary and its HuggingFace tokenizer files, built with the
// shared WordLevel builder in src/io/tokenizer-build.ts.

import { type TokenizerFiles, buildWordLevelTokenizerJson } from '../../io/tokenizer-build';

/** Special tokens in id order (unk, bos, eos, pad, then the image placeholder): ids 0..4. */
export const SPECIAL_TOKENS = ['<unk>', '<s>', '</s>', '<pad>', '<image>'] as const;

// Same split as the builder's pre-tokenizer (words of letters/digits/_, or one other non-space
// character); test/data/toyworld.test.ts checks the two agree on every toyworld text.
const PIECE = /[\p{L}\p{N}_]+|[^\p{L}\p{N}_\s]/gu;
const SPECIAL_SPLIT = new RegExp(`(${SPECIAL_TOKENS.map((s) => s.replace(/[<>/]/g, (c) => `\\${c}`)).join('|')})`);

/** Splits text the way the tokenizer will: special tokens kept whole, then words and single punctuation. */
export function preTokenize(text: string): string[] {
  const out: string[] = [];
  for (const part of text.split(SPECIAL_SPLIT)) {
    if ((SPECIAL_TOKENS as readonly string[]).includes(part)) out.push(part);
    else out.push(...(part.match(PIECE) ?? []));
  }
  return out;
}

/** The full vocabulary in id order: specials, then every other token of the texts in code-unit order. */
export function buildVocab(texts: Iterable<string>): string[] {
  const words = new Set<string>();
  for (const t of texts) for (const tok of preTokenize(t)) words.add(tok);
  for (const s of SPECIAL_TOKENS) words.delete(s);
  return [...SPECIAL_TOKENS, ...[...words].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))];
}

/** tokenizer.json + tokenizer_config.json for a vocabulary from buildVocab. */
export function toyworldTokenizerFiles(vocab: readonly string[], modelMaxLength: number): TokenizerFiles {
  const words = vocab.slice(SPECIAL_TOKENS.length);
  const files = buildWordLevelTokenizerJson(words, {
    specials: { unk: '<unk>', bos: '<s>', eos: '</s>', pad: '<pad>', extra: ['<image>'] },
  });
  const model = files.tokenizerJson.model as { vocab: Record<string, number> };
  vocab.forEach((w, i) => {
    if (model.vocab[w] !== i) throw new RangeError(`toyworldTokenizerFiles: '${w}' got id ${model.vocab[w]}, expected ${i}.`);
  });
  return {
    tokenizerJson: files.tokenizerJson,
    tokenizerConfig: {
      ...files.tokenizerConfig,
      add_bos_token: true,
      add_eos_token: false,
      model_max_length: modelMaxLength,
      extra_special_tokens: { image_token: '<image>' },
    },
  };
}
