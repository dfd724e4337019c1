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
import { filterQuestions, identificationPrompt, joinKey, type Dataset, type EntityType, type Question, type QuestionWhere } from '../../data/popvqa';
import { defaultTemplate, imagePrepFor, modelAssets, type ImagePrep, type PixelInput } from '../assets';
import { filterEntities, type EntityRef, type Modality, type PromptCase, type PromptSource } from '../source';

export function isDataset(x: unknown): x is Dataset {
  return typeof x === 'object' && x !== null && Array.isArray((x as Dataset).entities) && Array.isArray((x as Dataset).questions) && typeof (x as Dataset).imagePath === 'function';
}

export interface DatasetSourceOptions {
  template?: string;
  tokenizer?: TextTokenizer;
  /** Only the questions passing this filter on questions.csv columns (entities left without one are dropped). */
  where?: QuestionWhere;
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
  const template = opts.template ?? modelAssets(model).template ?? defaultTemplate(model);
  let prep: ImagePrep | null = null;
  const prepared = new Map<string, { pixels: PixelInput; numTokens: number; layout: ImageLayout | null; tokenIds?: number[] }>();
  const entities: EntityRef[] = ds.entities.map((e) => ({
    key: joinKey(e.sUri, e.subject),
    subject: e.subject,
    aliases: e.aliases,
    type: e.type,
    extra: { ...e.extra, s_uri: e.sUri, image: e.imageFound ? e.resizedPath : '' },
  }));
  const questions = new Map<string, Question[]>();
  for (const q of ds.questions) {
    const k = joinKey(q.sUri, q.subject);
    questions.set(k, [...(questions.get(k) ?? []), q]);
  }
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
  const build = (e: EntityRef, role: PromptCase['role'], question: string, imageRel: string | null, extra: Partial<PromptCase> & { answerPrefix?: string }): PromptCase => {
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
    const { answerPrefix: _drop, ...rest } = extra;
    return {
      id: `${e.key}/${role}/${imageRel ? 'image' : 'text'}/${extra.relation ?? ''}/${question}`,
      entity: e,
      role,
      modality: imageRel ? 'image' : 'text',
      inputIds: built.inputIds,
      spans: built.spans,
      image: imageRel,
      ...rest,
    };
  };
  const src: PromptSource & { prepareImages(es: EntityRef[]): Promise<void> } = {
    kind: 'dataset',
    entities: (o) => filterEntities(entities, o),
    // A new source over the filtered dataset (filters compose: each narrows the last one's questions).
    withQuestions: (where) => datasetSource(model, filterQuestions(ds, where), { template, tokenizer: tok }),
    async prepareImages(es) {
      for (const e of es) {
        const rels = [e.extra.image, ...(views.get(e.extra.s_uri)?.map((v) => v.path) ?? [])].filter(Boolean);
        for (const r of rels) await load(r);
      }
    },
    identification(e) {
      if (!e.extra.image) return null;
      const { query, answerPrefix } = identificationPrompt(e.type as EntityType);
      return build(e, 'identify', query, e.extra.image, { answerPrefix });
    },
    questions(e, modality: Modality, o) {
      if (modality === 'image' && !e.extra.image) return [];
      return (questions.get(e.key) ?? []).map((q) =>
        modality === 'text'
          ? build(e, 'question', q.question, null, { answers: q.possibleAnswers, relation: q.relation, question: q.question })
          : build(e, 'question', o?.cotSuffix ? `${q.questionForImage} ${o.cotSuffix}` : q.questionForImage, e.extra.image, {
              answers: q.possibleAnswers,
              relation: q.relation,
              question: q.questionForImage,
              cot: Boolean(o?.cotSuffix),
            }),
      );
    },
    views(e) {
      const vs = views.get(e.extra.s_uri);
      const { query, answerPrefix } = identificationPrompt(e.type as EntityType);
      if (!vs || vs.length === 0) return e.extra.image ? [build(e, 'view', query, e.extra.image, { answerPrefix, split: null })] : [];
      return vs.map((v) => build(e, 'view', query, v.path, { answerPrefix, split: v.split }));
    },
    naming(e) {
      const q = (questions.get(e.key) ?? []).find((x) => x.question.includes(e.subject));
      return build(e, 'naming', q ? q.question : `Tell me about ${e.subject}.`, null, {});
    },
    backbonePrompt(q, backbone) {
      if (!q.relation && !q.question) return null;
      const btok = modelAssets(backbone).tokenizer ?? tok;
      const orig = (questions.get(q.entity.key) ?? []).find((x) => x.relation === q.relation || x.questionForImage === q.question);
      if (!orig) return null;
      const built = buildPrompt(btok, { template: 'plain', question: orig.question, entity: orig.question.includes(q.entity.subject) ? q.entity.subject : undefined });
      return { id: `${q.id}/backbone`, entity: q.entity, role: 'backbone', modality: 'text', inputIds: built.inputIds, spans: built.spans, image: null, relation: q.relation };
    },
    async pixels(image) {
      return (await load(image)).pixels;
    },
    // Models may pad their vocabulary past the tokenizer's: those ids have no text.
    decode: (ids) => tok.decode(ids.filter((i) => i >= 0 && i < tok.vocabSize), { skipSpecialTokens: true }),
    entityTokens: (e) => tok.encode(e.subject, { addSpecialTokens: false }),
  };
  return src;
}

/** Dataset sources build prompts synchronously; their images must be decoded first (no-op for raw sources). */
export async function prepareSource(src: PromptSource, entities: EntityRef[]): Promise<void> {
  const p = (src as { prepareImages?: (es: EntityRef[]) => Promise<void> }).prepareImages;
  if (p) await p.call(src, entities);
}
