// Position selectors: typed, JSON-serialisable sets of token positions resolved against a prompt's recorded
// spans (src/io/prompt.ts), never against hard-coded indices. The PopVQA code hard-codes 5..580 for
// LLaVA-1.5-7B and misses a token; here an "image" selector reads the span the prompt builder recorded.
import { InputError } from '../errors';
import { imageTokenRole, type ImageSpan, type PromptSpans, type TokenSpan } from '../io/prompt';

/** Inclusive-exclusive index range [from, to) on a patch grid or a token span. */
export type Range = [number, number];

export type Selector =
  /** Image tokens of image `image` (default: every image), optionally a patch-grid region or part. */
  | {
      kind: 'image';
      image?: number;
      /**
       * Patch-grid rows/cols [from, to) of a grid layout (CLS excluded), of the base crop or tile map (anyres), of
       * the merged grid (Qwen2-VL), of the native-resolution grid (Pixtral: the [IMG] tokens, breaks excluded).
       */
      rows?: Range;
      cols?: Range;
      /**
       * Which part: anyres' base crop, unpadded tile map or image_newline tokens; 'newline' is also Pixtral's
       * row terminators ([IMG_BREAK], and [IMG_END] closing the last row), 'grid' its [IMG] tokens.
       */
      part?: 'base' | 'tile' | 'newline' | 'cls' | 'grid';
      /** Anyres: one crop tile (tile-grid row/col) of the tile feature map. */
      tile?: { row: number; col: number };
      /** Qwen2-VL: one merged-grid cell (temporal index t, default 0). */
      cell?: { t?: number; row: number; col: number };
    }
  /** The last token of an image span. */
  | { kind: 'image-last'; image?: number }
  /** The entity's tokens inside the question (`last: true` keeps only its final token). */
  | { kind: 'subject'; last?: boolean }
  /** Prompt tokens after the last image through the end of the question. */
  | { kind: 'query'; last?: boolean }
  /** Every prompt token after the last image (query, assistant tag, answer prefix). */
  | { kind: 'after-image' }
  /** The final prompt token (where the next-token prediction is read). */
  | { kind: 'last' }
  /** Tokens produced by generation (decode steps); `from`/`to` count generated tokens. */
  | { kind: 'generated'; from?: number; to?: number }
  /** Explicit positions in the row's own (unpadded) coordinates; negatives count from the end of the prompt. */
  | { kind: 'positions'; positions: number[] }
  | { kind: 'all' }
  | { kind: 'union'; of: Selector[] };

export const SELECTOR_KINDS = ['image', 'image-last', 'subject', 'query', 'after-image', 'last', 'generated', 'positions', 'all', 'union'] as const;

/** One batch row's geometry: its spans (unpadded coordinates) and where its first token sits in the padded batch. */
export interface RowGeometry {
  spans: PromptSpans;
  /** Left-padding offset: absolute position = span position + offset. */
  offset: number;
  /** Padded prompt length of the batch (generated token s sits at absolute position promptLength + s). */
  promptLength: number;
}

/** Resolved positions for one row, in absolute (padded, cache) coordinates. */
export interface RowPositions {
  /** Sorted, unique prompt positions. */
  prompt: number[];
  /** Generated-token range [from, to) counted in generated tokens (to = Infinity for "all"), or null. */
  generated: Range | null;
}

function imageSpansOf(spans: PromptSpans, image: number | undefined, what: string): ImageSpan[] {
  if (spans.images.length === 0) throw new InputError(`${what}: the prompt has no image span (a text-only prompt?)`);
  if (image === undefined) return spans.images;
  const s = spans.images.find((x) => x.image === image) ?? spans.images[image];
  if (!s) throw new InputError(`${what}: image ${image} does not exist; the prompt has ${spans.images.length} image(s)`);
  return [s];
}

function inRange(v: number, r: Range | undefined): boolean {
  return r === undefined || (v >= r[0] && v < r[1]);
}

/** Square grid assumed for spans recorded without a layout (pre-tokenised fixtures): n = g². */
function implicitGrid(span: ImageSpan): { rows: number; cols: number } | null {
  const g = Math.round(Math.sqrt(span.length));
  return g * g === span.length ? { rows: g, cols: g } : null;
}

/** Positions (relative to the span start) of one image span that a selector keeps. */
function imagePositions(span: ImageSpan, sel: Extract<Selector, { kind: 'image' }>): number[] {
  const out: number[] = [];
  const region = sel.rows !== undefined || sel.cols !== undefined || sel.part !== undefined || sel.tile !== undefined || sel.cell !== undefined;
  if (!region) {
    for (let k = 0; k < span.length; k++) out.push(k);
    return out;
  }
  const layout = span.layout;
  if (!layout) {
    const g = implicitGrid(span);
    if (!g) throw new InputError(`image selector: the image span (${span.length} tokens) has no layout and is not a square grid; cannot select rows/cols`);
    if (sel.tile || sel.cell || (sel.part && sel.part !== 'grid'))
      throw new InputError('image selector: tile/cell/part need a recorded image layout (build prompts with io/prompt and a processor layout)');
    for (let k = 0; k < span.length; k++) if (inRange(Math.floor(k / g.cols), sel.rows) && inRange(k % g.cols, sel.cols)) out.push(k);
    return out;
  }
  if (sel.tile && layout.kind !== 'anyres') throw new InputError(`image selector: "tile" applies to anyres (LLaVA-NeXT) images, this one is "${layout.kind}"`);
  if (sel.cell && layout.kind !== 'qwen') throw new InputError(`image selector: "cell" applies to Qwen2-VL merged grids, this one is "${layout.kind}"`);
  for (let k = 0; k < span.length; k++) {
    const role = imageTokenRole(layout, k);
    if (sel.part && role.part !== sel.part) continue;
    if (role.part === 'cls') {
      if (sel.part === 'cls') out.push(k);
      continue;
    }
    if (role.part === 'newline') {
      if (sel.part === 'newline' && inRange(role.row, sel.rows)) out.push(k);
      continue;
    }
    if (role.part === 'merged') {
      if (sel.cell && (role.t !== (sel.cell.t ?? 0) || role.row !== sel.cell.row || role.col !== sel.cell.col)) continue;
      if (inRange(role.row, sel.rows) && inRange(role.col, sel.cols)) out.push(k);
      continue;
    }
    if (sel.tile) {
      if (role.part !== 'tile' || layout.kind !== 'anyres') continue;
      // Tile (r, c) covers full-map rows r*g..(r+1)*g; unpadded coordinates start at keptRows[0].
      const g = layout.featureGrid;
      const fr = role.row + layout.keptRows[0];
      const fc = role.col + layout.keptCols[0];
      if (Math.floor(fr / g) !== sel.tile.row || Math.floor(fc / g) !== sel.tile.col) continue;
    }
    if (inRange(role.row, sel.rows) && inRange(role.col, sel.cols)) out.push(k);
  }
  return out;
}

function spanPositions(s: TokenSpan | null, what: string, last?: boolean): number[] {
  if (!s) throw new InputError(`${what}: the prompt has no ${what} span recorded`);
  if (last) return [s.end - 1];
  const out: number[] = [];
  for (let i = s.start; i < s.end; i++) out.push(i);
  return out;
}

/** Prompt positions (unpadded coordinates) and generated range of a selector for one prompt. */
function resolveRaw(sel: Selector, spans: PromptSpans): { prompt: number[]; generated: Range | null } {
  switch (sel.kind) {
    case 'image':
      return { prompt: imageSpansOf(spans, sel.image, 'image selector').flatMap((s) => imagePositions(s, sel).map((k) => s.start + k)), generated: null };
    case 'image-last':
      return { prompt: imageSpansOf(spans, sel.image, 'image-last selector').map((s) => s.start + s.length - 1).slice(sel.image === undefined ? -1 : 0), generated: null };
    case 'subject':
      return { prompt: spanPositions(spans.subject, 'subject', sel.last), generated: null };
    case 'query':
      return { prompt: spanPositions(spans.query, 'query', sel.last), generated: null };
    case 'after-image': {
      const lastImg = spans.images[spans.images.length - 1];
      const from = lastImg ? lastImg.start + lastImg.length : 0;
      const out: number[] = [];
      for (let i = from; i < spans.length; i++) out.push(i);
      return { prompt: out, generated: null };
    }
    case 'last':
      return { prompt: [spans.last], generated: null };
    case 'generated':
      return { prompt: [], generated: [sel.from ?? 0, sel.to ?? Infinity] };
    case 'positions':
      return {
        prompt: sel.positions.map((p) => {
          const q = p < 0 ? spans.length + p : p;
          if (!Number.isInteger(q) || q < 0 || q >= spans.length)
            throw new InputError(`positions selector: position ${p} is outside the prompt's ${spans.length} tokens`);
          return q;
        }),
        generated: null,
      };
    case 'all':
      return { prompt: Array.from({ length: spans.length }, (_, i) => i), generated: [0, Infinity] };
    case 'union': {
      const parts = sel.of.map((s) => resolveRaw(s, spans));
      let gen: Range | null = null;
      for (const p of parts)
        if (p.generated) gen = gen ? [Math.min(gen[0], p.generated[0]), Math.max(gen[1], p.generated[1])] : p.generated;
      return { prompt: parts.flatMap((p) => p.prompt), generated: gen };
    }
    default:
      throw new InputError(`unknown selector kind ${JSON.stringify((sel as { kind: unknown }).kind)}; use one of ${SELECTOR_KINDS.join(', ')}`);
  }
}

/** Resolves a selector for one batch row into absolute (padded) coordinates. */
export function resolveSelector(sel: Selector | string, row: RowGeometry): RowPositions {
  const raw = resolveRaw(toSelector(sel), row.spans);
  const prompt = [...new Set(raw.prompt.map((p) => p + row.offset))].sort((a, b) => a - b);
  return { prompt, generated: raw.generated };
}

/** Resolves a selector in a row's own coordinates (no padding), e.g. to read cached states of that prompt alone. */
export function selectorPositions(sel: Selector | string, spans: PromptSpans): number[] {
  return resolveSelector(sel, { spans, offset: 0, promptLength: spans.length }).prompt;
}

/** Whether absolute position `pos` of a row is selected (prompt positions, or a generated token). */
export function isSelected(r: RowPositions, pos: number, promptLength: number): boolean {
  if (pos >= promptLength) {
    if (!r.generated) return false;
    const g = pos - promptLength;
    return g >= r.generated[0] && g < r.generated[1];
  }
  return r.prompt.includes(pos);
}

/** Patch-grid coordinates of a prompt position, when it is an image token. */
export function gridCoordinates(spans: PromptSpans, pos: number): { image: number; row: number; col: number; part: string } | null {
  for (const s of spans.images) {
    if (pos < s.start || pos >= s.start + s.length) continue;
    const k = pos - s.start;
    if (s.layout) {
      const role = imageTokenRole(s.layout, k);
      return { image: s.image, row: 'row' in role ? role.row : -1, col: 'col' in role ? role.col : -1, part: role.part };
    }
    const g = implicitGrid(s);
    return g ? { image: s.image, row: Math.floor(k / g.cols), col: k % g.cols, part: 'grid' } : { image: s.image, row: -1, col: k, part: 'grid' };
  }
  return null;
}

/** A short human-readable label of a selector (table columns, warnings). */
export function describeSelector(sel: Selector): string {
  switch (sel.kind) {
    case 'union':
      return sel.of.map(describeSelector).join('+');
    case 'positions':
      return `positions[${sel.positions.join(',')}]`;
    case 'image': {
      const bits: string[] = [];
      if (sel.image !== undefined) bits.push(`#${sel.image}`);
      if (sel.rows) bits.push(`rows ${sel.rows[0]}-${sel.rows[1] - 1}`);
      if (sel.cols) bits.push(`cols ${sel.cols[0]}-${sel.cols[1] - 1}`);
      if (sel.part) bits.push(sel.part);
      if (sel.tile) bits.push(`tile ${sel.tile.row},${sel.tile.col}`);
      if (sel.cell) bits.push(`cell ${sel.cell.row},${sel.cell.col}`);
      return bits.length ? `image(${bits.join(' ')})` : 'image';
    }
    case 'subject':
    case 'query':
      return sel.last ? `${sel.kind}-last` : sel.kind;
    default:
      return sel.kind;
  }
}

/** Named shorthands used by experiment specs and CLI flags ("image", "last", "entity", ...). */
export function namedSelector(name: string): Selector {
  switch (name) {
    case 'image':
      return { kind: 'image' };
    case 'image-last':
    case 'last-image':
      return { kind: 'image-last' };
    case 'last':
      return { kind: 'last' };
    case 'query':
      return { kind: 'query' };
    case 'query-last':
      return { kind: 'query', last: true };
    case 'query+generated':
      return { kind: 'union', of: [{ kind: 'after-image' }, { kind: 'generated' }] };
    case 'entity':
    case 'subject':
      return { kind: 'subject' };
    case 'entity-last':
    case 'subject-last':
      return { kind: 'subject', last: true };
    case 'generated':
      return { kind: 'generated' };
    case 'all':
      return { kind: 'all' };
    default:
      throw new InputError(
        `unknown position set "${name}"; use image, image-last, last, query, query-last, query+generated, entity, entity-last, generated, all, or a selector object`,
      );
  }
}

export function toSelector(s: Selector | string): Selector {
  return typeof s === 'string' ? namedSelector(s) : s;
}

/**
 * Spans of a pre-tokenised prompt (fixtures, models without a tokenizer): image spans are the runs of
 * `imageTokenId`, the query runs from after the last image to the end, `subject` when given.
 */
export function spansFromIds(
  ids: readonly number[],
  opts: { imageTokenId?: number; subject?: TokenSpan | null; question?: TokenSpan | null; layouts?: (ImageSpan['layout'])[] } = {},
): PromptSpans {
  const images: ImageSpan[] = [];
  if (opts.imageTokenId !== undefined) {
    let t = 0;
    while (t < ids.length) {
      if (ids[t] !== opts.imageTokenId) {
        t++;
        continue;
      }
      let e = t;
      while (e < ids.length && ids[e] === opts.imageTokenId) e++;
      const layout = opts.layouts?.[images.length] ?? null;
      // A Pixtral image is not one run: its grid rows are separated by [IMG_BREAK]; the layout gives its extent.
      if (layout?.kind === 'pixtral') e = t + layout.numTokens;
      if (e > ids.length) throw new InputError(`image ${images.length} (${layout?.kind} layout, ${layout ? e - t : 0} tokens from ${t}) runs past the ${ids.length} prompt tokens`);
      images.push({ image: images.length, start: t, length: e - t, layout });
      t = e;
    }
  }
  const lastImg = images[images.length - 1];
  const qStart = lastImg ? lastImg.start + lastImg.length : 0;
  const question = opts.question ?? (qStart < ids.length ? { start: qStart, end: ids.length } : null);
  return {
    length: ids.length,
    images,
    question,
    query: question ? { start: Math.min(qStart, question.start), end: question.end } : null,
    subject: opts.subject ?? null,
    assistant: null,
    answerPrefix: null,
    last: ids.length - 1,
  };
}
