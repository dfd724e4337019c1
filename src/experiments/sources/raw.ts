// Pre-tokenised prompts (format "hopscope-prompts"): for models without a tokenizer, such as the HF
// fixtures. Token ids decode to words "tok<id>" (4+ characters, so the PopVQA long-word rule sees them);
// entity names and answers are written in the same words.
import * as fs from 'node:fs';
import { InputError } from '../../errors';
import { checkQuestionWhere, matchesWhere, type QuestionWhere } from '../../data/popvqa';
import type { ImageLayout, TokenSpan } from '../../io/prompt';
import { spansFromIds } from '../../interventions/selectors';
import type { PixelInput } from '../assets';
import { filterEntities, type EntityRef, type Modality, type PromptCase, type PromptSource } from '../source';

export interface RawPrompt {
  entity: string;
  role: PromptCase['role'];
  modality: Modality;
  inputIds: number[];
  image?: string;
  answers?: string[];
  relation?: string;
  question?: string;
  subject?: TokenSpan;
  split?: 'train' | 'test';
  /** An image question with the chain-of-thought instruction. */
  cot?: boolean;
  /** Further questions.csv columns of a question (e.g. `vqa_split`), for the spec's `questions.where`. */
  columns?: Record<string, string>;
}

export interface RawPrompts {
  format: 'hopscope-prompts';
  version: 1;
  imageTokenId?: number;
  entities: { key: string; subject: string; aliases?: string[]; type: string; extra?: Record<string, string> }[];
  /**
   * Preprocessed pixel values per image key, shape with a leading 1 ([1, 3, 28, 28]; LLaVA-NeXT
   * [1, crops, 3, H, W] with `imageSize` [h, w]); Qwen2-VL flattened patches [patches, row] with `gridThw`;
   * Pixtral [1, 3, h, w] with the processed `imageSize`. `layout` (an ImageLayout) gives the image's token
   * geometry; a Pixtral image needs it, since its [IMG] rows are split by [IMG_BREAK] tokens.
   */
  images?: Record<string, { shape: number[]; data: number[] | Float32Array; imageSize?: [number, number]; gridThw?: [number, number, number]; layout?: ImageLayout }>;
  prompts: RawPrompt[];
}

export function isRawPrompts(x: unknown): x is RawPrompts {
  return typeof x === 'object' && x !== null && (x as RawPrompts).format === 'hopscope-prompts';
}

export function readRawPrompts(file: string): RawPrompts {
  const v = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
  if (!isRawPrompts(v)) throw new InputError(`${file}: not a "hopscope-prompts" file (field "format" must be "hopscope-prompts")`);
  return v;
}

/** The words raw token ids decode to. */
export function rawWord(id: number): string {
  return `tok${id}`;
}

/** The columns a question filter may name on raw prompts: `relation` and the question prompts' `columns`. */
function rawQuestionColumns(raw: RawPrompts): string[] {
  const cols = new Set<string>();
  for (const p of raw.prompts) {
    if (p.role !== 'question') continue;
    if (p.relation !== undefined) cols.add('relation');
    for (const k of Object.keys(p.columns ?? {})) cols.add(k);
  }
  return [...cols];
}

function rawCell(p: RawPrompt, column: string): string | undefined {
  return column === 'relation' ? p.relation ?? p.columns?.relation : p.columns?.[column];
}

/**
 * A source over pre-tokenised prompts. With `where` (filters that must all pass), only the question
 * prompts passing them are used and entities left without a question are dropped.
 */
export function rawSource(raw: RawPrompts, where: readonly QuestionWhere[] = []): PromptSource {
  if (raw.version !== 1) throw new InputError(`raw prompts: version ${JSON.stringify(raw.version)} is not supported; use 1`);
  for (const w of where) checkQuestionWhere(w, rawQuestionColumns(raw), 'the raw prompts');
  const passes = (p: RawPrompt) => p.role !== 'question' || where.every((w) => matchesWhere((c) => rawCell(p, c), w));
  const withQuestion = new Set(raw.prompts.filter((p) => p.role === 'question' && passes(p)).map((p) => p.entity));
  const allEntities: EntityRef[] = raw.entities.map((e) => ({ key: e.key, subject: e.subject, aliases: e.aliases ?? [], type: e.type, extra: e.extra ?? {} }));
  const entities = where.length ? allEntities.filter((e) => withQuestion.has(e.key)) : allEntities;
  const byKey = new Map(allEntities.map((e) => [e.key, e]));
  const built: PromptCase[] = raw.prompts.map((p, i) => {
    const entity = byKey.get(p.entity);
    if (!entity) throw new InputError(`raw prompts: prompts[${i}] names entity "${p.entity}", which is not in "entities"`);
    if (p.image && !raw.images?.[p.image]) throw new InputError(`raw prompts: prompts[${i}] uses image "${p.image}", which is not in "images"`);
    const layout = p.image ? raw.images?.[p.image]?.layout : undefined;
    const spans = spansFromIds(p.inputIds, { imageTokenId: p.modality === 'image' ? raw.imageTokenId : undefined, subject: p.subject ?? null, layouts: layout ? [layout] : undefined });
    if (p.modality === 'image' && spans.images.length === 0)
      throw new InputError(`raw prompts: prompts[${i}] is an image prompt but has no image token ${raw.imageTokenId ?? '(imageTokenId missing)'}`);
    return {
      id: `${p.entity}/${p.role}${p.cot ? '-cot' : ''}/${p.modality}/${p.relation ?? p.split ?? ''}/${i}`,
      entity,
      role: p.role,
      modality: p.modality,
      inputIds: p.inputIds,
      spans,
      image: p.image ?? null,
      answers: p.answers,
      relation: p.relation,
      question: p.question,
      split: p.split ?? null,
      cot: p.cot ?? false,
    };
  });
  // Ids keep the prompt's index in the file, so a filtered source names its prompts as the full one does.
  const cases = built.filter((_, i) => passes(raw.prompts[i]));
  const of = (e: EntityRef, pred: (c: PromptCase) => boolean) => cases.filter((c) => c.entity === e && pred(c));
  const pixelCache = new Map<string, PixelInput>();
  return {
    kind: 'raw',
    template: 'pre-tokenised',
    entities: (opts) => filterEntities(entities, opts),
    identification: (e) => of(e, (c) => c.role === 'identify' && c.modality === 'image')[0] ?? null,
    questions: (e, modality, opts) => of(e, (c) => c.role === 'question' && c.modality === modality && Boolean(c.cot) === Boolean(opts?.cotSuffix && modality === 'image')),
    views: (e) => {
      const v = of(e, (c) => c.role === 'view');
      return v.length ? v : of(e, (c) => c.role === 'identify' && c.modality === 'image');
    },
    naming: (e) => of(e, (c) => c.role === 'naming')[0] ?? of(e, (c) => c.role === 'question' && c.modality === 'text' && c.spans.subject !== null)[0] ?? null,
    // Paired by relation when the prompts carry one, else by order: the k-th image question with the k-th
    // text (or backbone) prompt of its entity, never every question with the first one.
    backbonePrompt: (q) => {
      const pick = (pred: (c: PromptCase) => boolean) => {
        const list = of(q.entity, pred);
        if (q.relation !== undefined) return list.find((c) => c.relation === q.relation) ?? null;
        const k = of(q.entity, (c) => c.role === 'question' && c.modality === 'image' && Boolean(c.cot) === Boolean(q.cot)).indexOf(q);
        return k >= 0 ? list[k] ?? null : null;
      };
      // Same vocabulary (the fixtures' backbone): the text question itself.
      return pick((c) => c.role === 'backbone') ?? pick((c) => c.role === 'question' && c.modality === 'text');
    },
    async pixels(image) {
      let p = pixelCache.get(image);
      if (!p) {
        const im = raw.images?.[image];
        if (!im) throw new InputError(`raw prompts: image "${image}" is not in "images"`);
        const data = im.data instanceof Float32Array ? im.data : Float32Array.from(im.data);
        if (data.length !== im.shape.reduce((a, b) => a * b, 1)) throw new InputError(`raw prompts: image "${image}" has ${data.length} values for shape [${im.shape}]`);
        p = { data, shape: im.shape, ...(im.imageSize ? { imageSize: im.imageSize } : {}), ...(im.gridThw ? { gridThw: im.gridThw } : {}) };
        pixelCache.set(image, p);
      }
      return p;
    },
    decode: (ids) => ids.map(rawWord).join(' '),
    entityTokens: (e) => [...e.subject.matchAll(/\btok(\d+)\b/g)].map((m) => Number(m[1])),
    withQuestions: (w) => rawSource(raw, [...where, w]),
  };
}
