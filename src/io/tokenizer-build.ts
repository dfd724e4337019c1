// Building small HF-format tokenizer.json files from a vocabulary, for tests and for teaching models
// trained here: the files load in this library and in Python's `tokenizers`/transformers alike.
import { mkdirSync, writeFileSync } from 'fs';
import * as path from 'path';
import { InputError } from '../errors';

type Json = Record<string, unknown>;

export interface SpecialTokens {
  unk?: string;
  bos?: string;
  eos?: string;
  pad?: string;
  /** Further special tokens kept whole by the splitter (e.g. "<image>", "<|im_start|>"). */
  extra?: readonly string[];
}

export interface TokenizerFiles {
  tokenizerJson: Json;
  tokenizerConfig: Json;
}

const DEFAULT_SPECIALS = { unk: '<unk>', bos: '<s>', eos: '</s>', pad: '<pad>' } as const;

/**
 * Word-or-single-punctuation-character pre-tokenizer written as a Split regex, so Rust and JS agree:
 * the stock "Whitespace" uses `\w`, which is ASCII-only in JavaScript but Unicode in Rust.
 */
const WORD_PUNCT_SPLIT: Json = {
  type: 'Split',
  pattern: { Regex: '[\\p{L}\\p{N}_]+|[^\\p{L}\\p{N}_\\s]' },
  behavior: 'Removed',
  invert: true,
};

function addedToken(id: number, content: string): Json {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

function specialList(s: SpecialTokens): string[] {
  const list = [s.unk, s.bos, s.eos, s.pad, ...(s.extra ?? [])].filter((t): t is string => typeof t === 'string');
  const seen = new Set<string>();
  for (const t of list) {
    if (t.length === 0) throw new InputError('special tokens must be non-empty strings');
    if (seen.has(t)) throw new InputError(`special token "${t}" is listed twice`);
    seen.add(t);
  }
  return list;
}

/** `BOS $A` (and `BOS $A BOS $B` for pairs), as Llama's tokenizer.json does it; no-op without BOS. */
function bosTemplate(bos: string | undefined, bosId: number | undefined): Json | null {
  if (bos === undefined || bosId === undefined) return null;
  const sp = { SpecialToken: { id: bos, type_id: 0 } };
  return {
    type: 'TemplateProcessing',
    single: [sp, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [sp, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
  };
}

function configFor(s: SpecialTokens, extra: Json = {}): Json {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: s.bos ?? null,
    eos_token: s.eos ?? null,
    pad_token: s.pad ?? null,
    unk_token: s.unk ?? null,
    additional_special_tokens: [...(s.extra ?? [])],
    clean_up_tokenization_spaces: false,
    model_max_length: 1000000,
    ...extra,
  };
}

export interface WordLevelOptions {
  specials?: SpecialTokens;
  /** Lower-case the text before lookup (vocabulary is then expected lower-case). */
  lowercase?: boolean;
}

/**
 * WordLevel tokenizer: ids = specials first (unk, bos, eos, pad, extra...), then `vocab` in order.
 * Text is split into words (letters/digits/_) and single punctuation characters; unknown words map
 * to unk. encode() prepends BOS. decode() joins with spaces (HF WordLevel has no decoder).
 */
export function buildWordLevelTokenizerJson(vocab: readonly string[], opts: WordLevelOptions = {}): TokenizerFiles {
  const s: SpecialTokens = { ...DEFAULT_SPECIALS, ...(opts.specials ?? {}) };
  const specials = specialList(s);
  const ids = new Map<string, number>();
  specials.forEach((t) => ids.set(t, ids.size));
  const splitter = new RegExp(`^(?:${(WORD_PUNCT_SPLIT.pattern as { Regex: string }).Regex})$`, 'u');
  for (const w of vocab) {
    if (ids.has(w)) throw new InputError(`buildWordLevelTokenizerJson: "${w}" appears twice (or is a special token)`);
    if (!splitter.test(w))
      throw new InputError(`buildWordLevelTokenizerJson: "${w}" can never be produced by the word/punctuation splitter; split it into words`);
    ids.set(w, ids.size);
  }
  const tokenizerJson: Json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((t) => addedToken(ids.get(t) as number, t)),
    normalizer: opts.lowercase ? { type: 'Lowercase' } : null,
    pre_tokenizer: WORD_PUNCT_SPLIT,
    post_processor: bosTemplate(s.bos, s.bos === undefined ? undefined : ids.get(s.bos)),
    decoder: null,
    model: { type: 'WordLevel', vocab: Object.fromEntries(ids), unk_token: s.unk ?? DEFAULT_SPECIALS.unk },
  };
  if (s.unk === undefined) throw new InputError('buildWordLevelTokenizerJson: WordLevel needs an unk token');
  return { tokenizerJson, tokenizerConfig: configFor(s, { clean_up_tokenization_spaces: true }) };
}

export interface BpeOptions {
  specials?: SpecialTokens;
  /** Characters that must be encodable besides those in `words` (default: printable ASCII). */
  alphabet?: string;
}

/**
 * SentencePiece-style BPE like Llama-2's tokenizer.json (legacy: "▁" prepended, spaces -> "▁",
 * byte fallback for unseen characters). Every word in `words` becomes one token "▁word", built
 * by left-to-right merges; other text falls back to characters, then bytes.
 * Ids: specials, then <0x00>..<0xFF>, then characters, then merged tokens.
 */
export function buildBpeTokenizerJson(words: readonly string[], opts: BpeOptions = {}): TokenizerFiles {
  const s: SpecialTokens = { unk: DEFAULT_SPECIALS.unk, bos: DEFAULT_SPECIALS.bos, eos: DEFAULT_SPECIALS.eos, ...(opts.specials ?? {}) };
  const specials = specialList(s);
  const vocab = new Map<string, number>();
  const add = (t: string) => {
    if (!vocab.has(t)) vocab.set(t, vocab.size);
  };
  specials.forEach(add);
  for (let b = 0; b < 256; b++) add(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const alphabet = opts.alphabet ?? Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');
  const pieces = ['▁', ...[...alphabet].filter((c) => c !== ' ')];
  const chains: string[][] = [];
  for (const w of words) {
    if (w.length === 0 || /\s/u.test(w)) throw new InputError(`buildBpeTokenizerJson: "${w}" must be one word without spaces`);
    const chars = ['▁', ...w];
    chains.push(chars);
    pieces.push(...chars);
  }
  pieces.forEach(add);
  // Merges ordered by the length of the prefix they create, so shorter prefixes always exist first.
  const merges: [string, string][] = [];
  const made = new Set<string>();
  const maxLen = Math.max(0, ...chains.map((c) => c.length));
  for (let len = 2; len <= maxLen; len++)
    for (const c of chains) {
      if (c.length < len) continue;
      const left = c.slice(0, len - 1).join('');
      const merged = left + c[len - 1];
      if (made.has(merged)) continue;
      made.add(merged);
      merges.push([left, c[len - 1]]);
      add(merged);
    }
  const tokenizerJson: Json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((t) => addedToken(vocab.get(t) as number, t)),
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }],
    },
    pre_tokenizer: null,
    post_processor: bosTemplate(s.bos, s.bos === undefined ? undefined : vocab.get(s.bos)),
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: s.unk ?? null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  return { tokenizerJson, tokenizerConfig: configFor(s, { legacy: true, add_bos_token: true, add_eos_token: false }) };
}

/** Writes tokenizer.json + tokenizer_config.json into `dir` (created if needed). */
export function writeTokenizerFiles(dir: string, files: TokenizerFiles): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(files.tokenizerJson, null, 2));
  writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(files.tokenizerConfig, null, 2));
}
