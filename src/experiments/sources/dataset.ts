// Prompts from a PopVQA-format Dataset (real PopVQA or toyworld) with the model's tokenizer, template and
// image processor: identification prompts by entity type, text questions naming the entity (with its
// subject span), image questions referring to "the subject in this image".
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'csv-parse/sync';
import { InputError } from '../../errors';
import { decodeImage } from '../../io/image';
import { buildPrompt, type ImageLayout } from '../../io/prompt';
import { loadTokenizer, type TextTokenizer } from '../../io/tokenizer';
import type { Model } from '../../models/model';
import { GENERIC_IDENTIFICATION, filterQuestions, identificationPrompt, joinKey, type Dataset, type EntityType, type Question, type QuestionWhere } from '../../data/popvqa';
import { imagePrepFor, modelAssets, templateFor, type ImagePrep, type PixelInput } from '../assets';
import { filterEntities, type EntityRef, type IdentificationOptions, type Modality, type PromptCase, type PromptSource } from '../source';

export function isDataset(x: unknown): x is Dataset {
  return typeof x === 'object' && x !== null && Array.isArray((x as Dataset).entities) && Array.isArray((x as Dataset).questions) && typeof (x as Dataset).imagePath === 'function';
}

export interface DatasetSourceOptions {
  template?: string;
  tokenizer?: TextTokenizer;
  /** Only the questions passing this filter on questions.csv columns (entities left without one are dropped). */
  where?: QuestionWhere;
  /** The unfiltered dataset (set by withQuestions): rows are numbered in it, so ids do not change with a filter. */
  root?: Dataset;
}

/** The model's tokenizer, else the data folder's (toyworld ships its tokenizer with the data). */
function tokenizerFor(model: Model, ds: Dataset, given?: TextTokenizer): TextTokenizer {
  const t = given ?? modelAssets(model).tokenizer;
  if (t) return t;
  if (fs.existsSync(path.join(ds.root, 'tokenizer.json'))) return loadTokenizer(ds.root);
  throw new InputError(
    `no tokenizer for this model: load it with loadModel(dir) from a folder with tokenizer.json, put one in ${ds.root}, or use pre-tokenised prompts`,
  );
}

interface View {
  path: string;
  split: 'train' | 'test' | null;
}

/** toyworld's views.csv (s_uri, view, split, path): several images per entity with a train/test split. */
function readViews(root: string): Map<string, View[]> {
  const out = new Map<string, View[]>();
  const file = path.join(root, 'views.csv');
  if (!fs.existsSync(file)) return out;
  const rows = parse(fs.readFileSync(file, 'utf8'), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  for (const r of rows) {
    if (!r.s_uri || !r.path) continue;
    const list = out.get(r.s_uri) ?? [];
    list.push({ path: r.path, split: r.split === 'train' || r.split === 'test' ? r.split : null });
    out.set(r.s_uri, list);
  }
  return out;
}

export function datasetSource(model: Model, data: Dataset, opts: DatasetSourceOptions = {}): PromptSource {
  const ds = opts.where ? filterQuestions(data, opts.where) : data;
  const tok = tokenizerFor(model, ds, opts.tokenizer);
  const template = opts.template ?? templateFor(model).template;
  let prep: ImagePrep | null = null;
  const prepared = new Map<string, { pixels: PixelInput; numTokens: number; layout: ImageLayout | null; tokenIds?: number[] }>();
  const entities: EntityRef[] = ds.entities.map((e) => ({
    key: joinKey(e.sUri, e.subject),
    subject: e.subject,
    aliases: e.aliases,
    type: e.type,
    extra: { ...e.extra, s_uri: e.sUri, image: e.imageFound ? e.resizedPath : '' },
  }));
  const byEntity = (qs: readonly Question[]) => {
    const m = new Map<string, Question[]>();
    for (const q of qs) {
      const k = joinKey(q.sUri, q.subject);
      m.set(k, [...(m.get(k) ?? []), q]);
    }
    return m;
  };
  const questions = byEntity(ds.questions);
  const rootQuestions = byEntity((opts.root ?? data).questions);
  const rowIndex = (k: string, q: Question) => rootQuestions.get(k)!.indexOf(q);
  const views = readViews(ds.root);
  // Token count and layout of an image come from the processed image (anyres depends on its size), so
  // images are decoded and processed once, up front (`prepareSource`), and kept for `pixels`.
  const load = async (rel: string) => {
    let p = prepared.get(rel);
    if (!p) {
      prep ??= imagePrepFor(model);
      p = prep.prepare(await decodeImage(path.resolve(ds.root, rel)));
      prepared.set(rel, p);
    }
    return p;
  };
  const imageTokens = (rel: string) => {
    const p = prepared.get(rel);
    if (!p) throw new InputError(`image ${rel} has not been prepared; call prepareSource(source, entities) first`);
    return { numTokens: p.numTokens, layout: p.layout ?? undefined, tokenIds: p.tokenIds };
  };
  const build = (
    e: EntityRef,
    role: PromptCase['role'],
    question: string,
    imageRel: string | null,
    extra: Partial<PromptCase> & { answerPrefix?: string; row?: number },
  ): PromptCase => {
    const images = imageRel ? [imageTokens(imageRel)] : [];
    const withEntity = !imageRel && question.includes(e.subject);
    const built = buildPrompt(tok, {
      template,
      question,
      images,
      answerPrefix: extra.answerPrefix,
      entity: withEntity ? e.subject : undefined,
      imageTokenId: model.imageTokenIndex,
    });
    const { answerPrefix, ...rest } = extra;
    const row = extra.row;
    // The row of questions.csv (per entity) and the answer prefix keep ids unique: two rows may share a
    // question text, and one query may be asked with and without a prefix.
    const tag = row !== undefined ? `#${row}` : '';
    return {
      id: `${e.key}/${role}/${imageRel ? 'image' : 'text'}/${extra.relation ?? ''}${tag}/${question}${answerPrefix ? `|${answerPrefix}` : ''}`,
      entity: e,
      role,
      modality: imageRel ? 'image' : 'text',
      inputIds: built.inputIds,
      spans: built.spans,
      image: imageRel,
      ...rest,
    };
  };
  const idQuery = (e: EntityRef, o: IdentificationOptions = {}) => {
    const q = o.generic ? GENERIC_IDENTIFICATION : identificationPrompt(e.type as EntityType);
    return { query: q.query, answerPrefix: o.prefix ? q.answerPrefix : undefined };
  };
  const src: PromptSource & { prepareImages(es: EntityRef[]): Promise<void> } = {
    kind: 'dataset',
    template,
    entities: (o) => filterEntities(entities, o),
    // A new source over the filtered dataset (filters compose: each narrows the last one's questions).
    withQuestions: (where) => datasetSource(model, filterQuestions(ds, where), { template, tokenizer: tok, root: opts.root ?? data }),
    async prepareImages(es) {
      for (const e of es) {
        const rels = [e.extra.image, ...(views.get(e.extra.s_uri)?.map((v) => v.path) ?? [])].filter(Boolean);
        for (const r of rels) await load(r);
      }
    },
    identification(e, o) {
      if (!e.extra.image) return null;
      const { query, answerPrefix } = idQuery(e, o);
      return build(e, 'identify', query, e.extra.image, { answerPrefix });
    },
    questions(e, modality: Modality, o) {
      if (modality === 'image' && !e.extra.image) return [];
      return (questions.get(e.key) ?? []).map((q) => {
        const row = rowIndex(e.key, q);
        if (modality === 'text') return build(e, 'question', q.question, null, { answers: q.possibleAnswers, relation: q.relation, question: q.question, row });
        return build(e, 'question', o?.cotSuffix ? `${q.questionForImage} ${o.cotSuffix}` : q.questionForImage, e.extra.image, {
          answers: q.possibleAnswers,
          relation: q.relation,
          question: q.questionForImage,
          cot: Boolean(o?.cotSuffix),
          row,
        });
      });
    },
    // Views carry the identification query without the prefix, as the identification step (identify.py:27-28).
    views(e) {
      const vs = views.get(e.extra.s_uri);
      const { query } = idQuery(e);
      if (!vs || vs.length === 0) return e.extra.image ? [build(e, 'view', query, e.extra.image, { split: null })] : [];
      return vs.map((v) => build(e, 'view', query, v.path, { split: v.split }));
    },
    // The first text question naming the entity, as that very question (same id, so callers that also
    // take the questions see one prompt, not two); a generic sentence when no question names it.
    naming(e) {
      const q = (questions.get(e.key) ?? []).find((x) => x.question.includes(e.subject));
      if (!q) return build(e, 'naming', `Tell me about ${e.subject}.`, null, {});
      return { ...build(e, 'question', q.question, null, { answers: q.possibleAnswers, relation: q.relation, question: q.question, row: rowIndex(e.key, q) }), role: 'naming' };
    },
    backbonePrompt(q, backbone, o) {
      // Pairing by row: the image question's own text question (`relation` is optional in PopVQA's file).
      if (q.row === undefined) return null;
      const orig = (rootQuestions.get(q.entity.key) ?? [])[q.row];
      if (!orig) return null;
      const btok = modelAssets(backbone).tokenizer ?? tok;
      const btemplate = o?.template ?? 'plain';
      const built = buildPrompt(btok, { template: btemplate, question: orig.question, entity: orig.question.includes(q.entity.subject) ? q.entity.subject : undefined });
      return {
        id: `${q.id}/backbone/${btemplate}`,
        entity: q.entity,
        role: 'backbone',
        modality: 'text',
        inputIds: built.inputIds,
        spans: built.spans,
        image: null,
        relation: q.relation,
        question: orig.question,
        answers: q.answers,
      };
    },
    async pixels(image) {
      return (await load(image)).pixels;
    },
    // Models may pad their vocabulary past the tokenizer's: those ids have no text.
    decode: (ids) => tok.decode(ids.filter((i) => i >= 0 && i < tok.vocabSize), { skipSpecialTokens: true }),
    entityTokens: (e) => entityTokenIds(tok, template, e.subject),
  };
  return src;
}

/** Dataset sources build prompts synchronously; their images must be decoded first (no-op for raw sources). */
export async function prepareSource(src: PromptSource, entities: EntityRef[]): Promise<void> {
  const p = (src as { prepareImages?: (es: EntityRef[]) => Promise<void> }).prepareImages;
  if (p) await p.call(src, entities);
}

/**
 * The entity name's ids as the tokenizer splits it inside a prompt (after a space, where an answer names
 * it): byte-level BPE and SentencePiece give " Paris" other ids than "Paris" at the start of a text. The
 * ids of "X name" minus those of "X" (X a plain word) are the in-context ids; the bare encoding is the
 * fallback when the difference is not a clean suffix.
 */
export function entityTokenIds(tok: TextTokenizer, _template: string, subject: string): number[] {
  const probe = 'is';
  const base = tok.encode(probe, { addSpecialTokens: false });
  const withName = tok.encode(`${probe} ${subject}`, { addSpecialTokens: false });
  if (withName.length > base.length && base.every((id, i) => withName[i] === id)) return withName.slice(base.length);
  return tok.encode(subject, { addSpecialTokens: false });
}
