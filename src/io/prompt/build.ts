// Tokenising prompts with image placeholders expanded to one token per image feature, and
// locating every span experiments need (images, question, subject, last position) as plain JSON.
import { ConfigError, InputError } from '../../errors';
import type { GridImageLayout } from '../processors/clip';
import type { AnyresLayout } from '../processors/anyres';
import type { QwenImageLayout } from '../processors/qwen2vl';
import type { PixtralImageLayout } from '../processors/pixtral';
import type { TextTokenizer } from '../tokenizer';
import { RenderOptions, RenderedPrompt, renderPrompt } from './templates';

export type ImageLayout = GridImageLayout | AnyresLayout | QwenImageLayout | PixtralImageLayout;

/** How many tokens an image takes in the prompt and, optionally, where they come from. */
export interface ImageTokens {
  numTokens: number;
  layout?: ImageLayout;
  /**
   * The image's own token ids when they are not `numTokens` copies of the image token (Pixtral's rows of
   * [IMG] closed by [IMG_BREAK] / [IMG_END]); length `numTokens`.
   */
  tokenIds?: readonly number[];
}

/** Half-open token range [start, end). */
export interface TokenSpan {
  start: number;
  end: number;
}

export interface ImageSpan {
  image: number;
  start: number;
  length: number;
  layout: ImageLayout | null;
}

/** Every position an experiment may address, in expanded-token coordinates. JSON-serialisable. */
export interface PromptSpans {
  length: number;
  images: ImageSpan[];
  /** Tokens covering the question text. */
  question: TokenSpan | null;
  /** From the token after the last image (start of the question without images) to the end of the question. */
  query: TokenSpan | null;
  /** The entity's tokens inside the question (first occurrence), when an entity was given. */
  subject: TokenSpan | null;
  /** The assistant tag between question and answer. */
  assistant: TokenSpan | null;
  answerPrefix: TokenSpan | null;
  /** Index of the final token: where the next-token prediction is read. */
  last: number;
}

export interface BuiltPrompt {
  text: string;
  inputIds: number[];
  imageTokenId: number | null;
  spans: PromptSpans;
}

export interface BuildOptions {
  /** Per image, in order. Their count must equal the number of image tokens in the text. */
  images?: readonly ImageTokens[];
  /** Entity string to locate inside the question (subject span). */
  entity?: string;
  /** The model's image token id (config `image_token_index` / `image_token_id`); checked against the tokenizer. */
  imageTokenId?: number;
  addSpecialTokens?: boolean;
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

function countOccurrences(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

interface Encoder {
  /** Marker-space ids of a text (each image token once). */
  encode: (text: string) => number[];
  /** null only for text-only prompts whose tokenizer has no image token. */
  imageTokenId: number | null;
}

/**
 * Whole-text mode when the image token is an added token (HF processors tokenise the full
 * string, so tokens next to the image keep their context, e.g. Llama's "▁" after <image>);
 * otherwise each piece between images is tokenised alone, special tokens on the first only.
 */
function makeEncoder(tok: TextTokenizer, imageToken: string, opts: BuildOptions, needImageId: boolean): Encoder {
  const addSpecial = opts.addSpecialTokens ?? true;
  const vocabId = tok.tokenToId(imageToken);
  if (tok.isAddedToken(imageToken) && vocabId !== undefined) {
    if (opts.imageTokenId !== undefined && opts.imageTokenId !== vocabId)
      throw new ConfigError(
        `image token "${imageToken}" is id ${vocabId} in the tokenizer but the model config says ${opts.imageTokenId}; tokenizer and checkpoint do not match`,
      );
    return { encode: (t) => tok.encode(t, { addSpecialTokens: addSpecial }), imageTokenId: vocabId };
  }
  const id = opts.imageTokenId ?? vocabId;
  if (id === undefined) {
    if (needImageId)
      throw new InputError(`image token "${imageToken}" is not in the tokenizer's vocabulary; pass imageTokenId (the model's image_token_index)`);
    return { encode: (t) => tok.encode(t, { addSpecialTokens: addSpecial }), imageTokenId: null };
  }
  return {
    encode: (t) => {
      const pieces = t.split(imageToken);
      const out: number[] = [];
      pieces.forEach((p, i) => {
        if (i > 0) out.push(id);
        if (p.length > 0 || (i === 0 && addSpecial)) out.push(...tok.encode(p, { addSpecialTokens: addSpecial && i === 0 }));
      });
      return out;
    },
    imageTokenId: id,
  };
}

/** Number of special tokens the post-processor appends after the text (0 for Llama/Qwen, 1 with add_eos_token). */
function specialSuffixLength(tok: TextTokenizer): number {
  const plain = tok.encode('a', { addSpecialTokens: false });
  const withSp = tok.encode('a', { addSpecialTokens: true });
  for (let i = 0; i + plain.length <= withSp.length; i++)
    if (plain.every((v, j) => withSp[i + j] === v)) return withSp.length - i - plain.length;
  return 0;
}

interface CharRanges {
  question: [number, number] | null;
  assistant: [number, number] | null;
  answerPrefix: [number, number] | null;
}

function buildSpans(tok: TextTokenizer, text: string, imageToken: string, ranges: CharRanges, opts: BuildOptions): BuiltPrompt {
  const images = opts.images ?? [];
  images.forEach((im, i) => {
    if (!Number.isInteger(im.numTokens) || im.numTokens <= 0)
      throw new InputError(`image ${i}: numTokens must be a positive integer, got ${im.numTokens}`);
  });
  const markers = countOccurrences(text, imageToken);
  if (markers !== images.length) {
    if (markers === 0)
      throw new InputError(`the prompt has no "${imageToken}" marker but ${images.length} image(s) were given; add one "${imageToken}" per image`);
    throw new InputError(
      `the prompt has ${markers} "${imageToken}" marker(s) but ${images.length} image(s) were given; give one image per marker`,
    );
  }
  const enc = makeEncoder(tok, imageToken, opts, images.length > 0);
  const ids = enc.encode(text);
  const suffix = (opts.addSpecialTokens ?? true) ? specialSuffixLength(tok) : 0;
  const markerPos: number[] = [];
  if (enc.imageTokenId !== null) ids.forEach((id, i) => id === enc.imageTokenId && markerPos.push(i));
  if (markerPos.length !== images.length)
    throw new InputError(
      `tokenising the prompt gave ${markerPos.length} image tokens (id ${enc.imageTokenId}) for ${images.length} image(s); ` +
        'does the question contain the image token id some other way?',
    );

  // Token index of a character boundary: shared prefix of the prefix's encoding and the full one.
  // A token straddling the boundary belongs to the span that starts there (side 'start') or ends there ('end').
  const indexAt = (charPos: number, side: 'start' | 'end'): number => {
    const full = enc.encode(text.slice(0, charPos));
    // Tokens a post-processor appends (EOS) are not part of the prefix's text.
    const p = suffix > 0 ? full.slice(0, Math.max(0, full.length - suffix)) : full;
    const l = commonPrefix(p, ids);
    return side === 'end' && l < p.length ? Math.min(l + 1, ids.length) : l;
  };
  // Marker-space index -> expanded index.
  const expand = (i: number): number => {
    let off = 0;
    markerPos.forEach((p, k) => {
      if (p < i) off += images[k].numTokens - 1;
    });
    return i + off;
  };
  const span = (r: [number, number] | null): TokenSpan | null => {
    if (!r || r[1] <= r[0]) return null;
    const s = expand(indexAt(r[0], 'start'));
    const e = expand(indexAt(r[1], 'end'));
    return e > s ? { start: s, end: e } : null;
  };

  const inputIds: number[] = [];
  const imageSpans: ImageSpan[] = [];
  let k = 0;
  ids.forEach((id, i) => {
    if (k < markerPos.length && markerPos[k] === i) {
      imageSpans.push({ image: k, start: inputIds.length, length: images[k].numTokens, layout: images[k].layout ?? null });
      const own = images[k].tokenIds;
      if (own && own.length !== images[k].numTokens)
        throw new InputError(`image ${k}: tokenIds has ${own.length} ids but numTokens is ${images[k].numTokens}`);
      for (let j = 0; j < images[k].numTokens; j++) inputIds.push(own ? own[j] : id);
      k++;
    } else inputIds.push(id);
  });

  const question = span(ranges.question);
  let subject: TokenSpan | null = null;
  if (opts.entity !== undefined) {
    if (!ranges.question) throw new InputError('an entity was given but the prompt has no question range to search');
    const q = text.slice(ranges.question[0], ranges.question[1]);
    const at = opts.entity.length > 0 ? q.indexOf(opts.entity) : -1;
    if (at < 0) throw new InputError(`entity "${opts.entity}" does not occur in the question "${q}"`);
    const s = ranges.question[0] + at;
    subject = span([s, s + opts.entity.length]);
  }
  let query: TokenSpan | null = null;
  if (question) {
    const lastImage = imageSpans.length ? imageSpans[imageSpans.length - 1] : null;
    const start = lastImage && lastImage.start + lastImage.length <= question.start ? lastImage.start + lastImage.length : question.start;
    query = { start, end: question.end };
  }
  if (inputIds.length === 0) throw new InputError('the prompt tokenised to nothing');
  return {
    text,
    inputIds,
    imageTokenId: enc.imageTokenId,
    spans: {
      length: inputIds.length,
      images: imageSpans,
      question,
      query,
      subject,
      assistant: span(ranges.assistant),
      answerPrefix: span(ranges.answerPrefix),
      last: inputIds.length - 1,
    },
  };
}

export interface PromptOptions extends Omit<RenderOptions, 'numImages'>, Omit<BuildOptions, 'images'> {
  images?: readonly ImageTokens[];
}

/**
 * Renders a template and tokenises it: one image block per entry of `images`, each expanded to
 * its `numTokens` (576 for LLaVA-1.5-7B, `anyresLayout(...).numTokens`, Qwen2-VL t*h*w/merge²).
 */
export function buildPrompt(tok: TextTokenizer, opts: PromptOptions): BuiltPrompt & { rendered: RenderedPrompt } {
  const rendered = renderPrompt({ ...opts, numImages: opts.images?.length ?? 0 });
  const built = buildSpans(tok, rendered.text, rendered.imageToken, rendered, opts);
  return { ...built, rendered };
}

/**
 * Tokenises free text containing `imageToken` markers (default "<image>"). Without template
 * structure, the question is everything after the last image (or the whole text).
 */
export function buildPromptFromText(
  tok: TextTokenizer,
  text: string,
  opts: BuildOptions & { imageToken?: string } = {},
): BuiltPrompt {
  const imageToken = opts.imageToken ?? '<image>';
  const lastMarker = text.lastIndexOf(imageToken);
  let qStart = lastMarker < 0 ? 0 : lastMarker + imageToken.length;
  // Skip separators between the image and the question ("<image>\n").
  while (qStart < text.length && /\s/u.test(text[qStart])) qStart++;
  return buildSpans(tok, text, imageToken, { question: [qStart, text.length], assistant: null, answerPrefix: null }, opts);
}

/** Role of the k-th token of an image span: which feature (or newline) it carries. */
export type ImageTokenRole =
  | { part: 'cls' }
  | { part: 'grid'; row: number; col: number }
  | { part: 'base'; row: number; col: number }
  | { part: 'tile'; row: number; col: number }
  | { part: 'newline'; row: number }
  | { part: 'merged'; t: number; row: number; col: number };

export function imageTokenRole(layout: ImageLayout, k: number): ImageTokenRole {
  if (!Number.isInteger(k) || k < 0) throw new InputError(`imageTokenRole: index ${k} must be a non-negative integer`);
  if (layout.kind === 'grid') {
    if (k < layout.cls) return { part: 'cls' };
    const i = k - layout.cls;
    if (i >= layout.rows * layout.cols) throw new InputError(`imageTokenRole: index ${k} is past the ${layout.rows * layout.cols + layout.cls} image tokens`);
    return { part: 'grid', row: Math.floor(i / layout.cols), col: i % layout.cols };
  }
  if (layout.kind === 'qwen') {
    if (k >= layout.t * layout.h * layout.w) throw new InputError(`imageTokenRole: index ${k} is past the ${layout.t * layout.h * layout.w} image tokens`);
    const t = Math.floor(k / (layout.h * layout.w));
    const r = k % (layout.h * layout.w);
    return { part: 'merged', t, row: Math.floor(r / layout.w), col: r % layout.w };
  }
  if (layout.kind === 'pixtral') {
    // Each grid row of [IMG] tokens is closed by [IMG_BREAK] ([IMG_END] for the last): the row terminator plays
    // the part anyres' image_newline plays, so selectors address both the same way.
    if (k >= layout.numTokens) throw new InputError(`imageTokenRole: index ${k} is past the ${layout.numTokens} image tokens`);
    const row = Math.floor(k / (layout.cols + 1));
    const col = k % (layout.cols + 1);
    return col === layout.cols ? { part: 'newline', row } : { part: 'grid', row, col };
  }
  if (k < layout.baseTokens) return { part: 'base', row: Math.floor(k / layout.baseCols), col: k % layout.baseCols };
  const i = k - layout.baseTokens;
  if (i >= layout.unpaddedRows * layout.newlineEvery) throw new InputError(`imageTokenRole: index ${k} is past the ${layout.numTokens} image tokens`);
  const row = Math.floor(i / layout.newlineEvery);
  const col = i % layout.newlineEvery;
  // Rows and columns are in the unpadded tile feature map (add keptRows[0]/keptCols[0] for the full map).
  return col === layout.unpaddedCols ? { part: 'newline', row } : { part: 'tile', row, col };
}
