// The teaching world's training and evaluation material, read from a toyworld folder (data/toyworld):
// token sequences with loss targets for each stage, and entity views rendered on the fly (the train views
// of the data plus extra augmented views, never the test views).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import { hashSeed, mulberry32, shuffled } from '../data/random';
import { augmentationFor, decodePngRgb, renderRgb } from '../data/toyworld/images';
import type { EntityType } from '../data/popvqa';
import { clipPreprocess, llava15ProcessorConfig } from '../io/processors';
import { loadTokenizer, type TextTokenizer } from '../io/tokenizer';

export interface WorldEntity {
  index: number;
  sUri: string;
  type: EntityType;
  subject: string;
  aliases: string[];
  identity: unknown;
  facts: Record<string, string[]>;
  trainRelations: string[];
  heldoutRelations: string[];
}

export interface Templates {
  identification: Record<EntityType, { query: string; answerPrefix: string; answer: string }>;
  imageReferent: Record<EntityType, string>;
  captions: Record<EntityType, string[]>;
  cotSuffix: Record<EntityType, string>;
  relations: Record<EntityType, { id: string; question: string; statements: string[] }[]>;
  promptTemplate: { image: string; text: string; imageToken: string };
}

export interface TeachingData {
  dir: string;
  seed: number;
  imageSize: number;
  entities: WorldEntity[];
  templates: Templates;
  tokenizer: TextTokenizer;
  imageTokenId: number;
  corpus: string[];
  trainViews: number[];
  testViews: number[];
}

function readJson<T>(file: string): T {
  if (!fs.existsSync(file)) throw new InputError(`teaching data: ${file} is missing; generate the toyworld first (src/data/toyworld.ts)`);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

export function loadTeachingData(dir: string): TeachingData {
  const world = readJson<{ seed: number; entities: { s_uri: string; type: EntityType; subject: string; aliases: string[]; identity: unknown; facts: Record<string, string[]> }[] }>(
    path.join(dir, 'world.json'),
  );
  const splits = readJson<{ seed: number; views: { train: number[]; test: number[] }; visualInstructionTuning: { train: Record<string, string[]>; heldout: Record<string, string[]> } }>(
    path.join(dir, 'splits.json'),
  );
  const templates = readJson<Templates>(path.join(dir, 'templates.json'));
  const tokenizer = loadTokenizer(dir);
  const corpus = fs.readFileSync(path.join(dir, 'lm_corpus.txt'), 'utf8').split('\n').filter((l) => l.trim() !== '');
  const entities = world.entities.map((e, index) => ({
    index,
    sUri: e.s_uri,
    type: e.type,
    subject: e.subject,
    aliases: e.aliases,
    identity: e.identity,
    facts: e.facts,
    trainRelations: splits.visualInstructionTuning.train[e.s_uri],
    heldoutRelations: splits.visualInstructionTuning.heldout[e.s_uri],
  }));
  const first = decodePngRgb(fs.readFileSync(path.join(dir, 'images', `${entities[0].sUri}_0.png`)));
  return {
    dir,
    seed: world.seed,
    imageSize: first.width,
    entities,
    templates,
    tokenizer,
    imageTokenId: tokenizer.requireId(templates.promptTemplate.imageToken, 'image token'),
    corpus,
    trainViews: splits.views.train,
    testViews: splits.views.test,
  };
}

// ------------------------------------------------------------------------------------------------
// Images

/** Raw RGB of a view: rendered like the generator (train views and extra views >= 100), or read from disk. */
export function viewRgb(data: TeachingData, e: WorldEntity, view: number, fromDisk = false): Uint8Array {
  if (fromDisk) return decodePngRgb(fs.readFileSync(path.join(data.dir, 'images', `${e.sUri}_${view}.png`))).rgb;
  if (data.testViews.includes(view)) throw new InputError(`view ${view} is a test view: never render it for training`);
  return renderRgb(e.type, e.identity as never, augmentationFor(data.seed, e.sUri, view), data.imageSize, hashSeed(data.seed, 'noise', e.sUri, view));
}

/** CLIP-processed pixels [n, 3, S, S] (flat), through the same processor the saved model ships with. */
export function pixelsOf(data: TeachingData, rgbs: Uint8Array[]): Float32Array {
  const S = data.imageSize;
  const cfg = llava15ProcessorConfig(S);
  const out = new Float32Array(rgbs.length * 3 * S * S);
  rgbs.forEach((rgb, i) => out.set(clipPreprocess({ width: S, height: S, data: rgb }, cfg).data, i * 3 * S * S));
  return out;
}

/** Training views of every entity: the data's train views plus `extra` augmented ones (ids 100..). */
export function trainingViewIds(data: TeachingData, extra: number): number[] {
  return [...data.trainViews, ...Array.from({ length: extra }, (_, i) => 100 + i)];
}

// ------------------------------------------------------------------------------------------------
// Sequences

/** ids and next-token targets (-1: no loss); `image` marks a row that takes one image. */
export interface Example {
  ids: number[];
  targets: number[];
  image?: { entity: number };
  /** The subject's positions (its name, or a span twin's image positions), for a read-by deadline (TeachingRecipe.lmReadBy). */
  subject?: Subject;
}

/** Where an example's subject is: its first position, its length, and whether it is an image's span (a span twin's, a copy's). */
export interface Subject {
  start: number;
  n: number;
  span: boolean;
}

export function fillTemplate(t: string, subject: string, answer = ''): string {
  const article = /^[aeiou]/i.test(answer) ? 'an' : 'a';
  return t.replaceAll('{X}', subject).replaceAll('{A}', answer).replaceAll('{a}', article);
}

export function questionFor(data: TeachingData, e: WorldEntity, rel: string, image: boolean): string {
  const spec = data.templates.relations[e.type].find((r) => r.id === rel);
  if (!spec) throw new InputError(`relation ${rel} is not a ${e.type} relation`);
  return fillTemplate(spec.question, image ? data.templates.imageReferent[e.type] : e.subject);
}

export function imagePrompt(data: TeachingData, query: string): string {
  return data.templates.promptTemplate.image.replace('{query}', query);
}

export function textPrompt(data: TeachingData, query: string): string {
  return data.templates.promptTemplate.text.replace('{query}', query);
}

export function idAnswer(data: TeachingData, e: WorldEntity): string {
  return data.templates.identification[e.type].answer.replace('{X}', e.subject);
}

export function cotQuery(data: TeachingData, e: WorldEntity, rel: string): string {
  return `${questionFor(data, e, rel, true)} ${data.templates.cotSuffix[e.type]}`;
}

/** Prompt ids with the image token expanded to `imageTokens` copies. */
export function promptIds(data: TeachingData, text: string, imageTokens: number): number[] {
  const ids = data.tokenizer.encode(text);
  return ids.flatMap((t) => (t === data.imageTokenId ? new Array<number>(imageTokens).fill(t) : [t]));
}

/** prompt (no loss) + [unscored prefix] + scored answer + EOS. */
function example(data: TeachingData, prompt: number[], answer: string, opts: { unscored?: string; image?: number } = {}): Example {
  const tok = data.tokenizer;
  const pre = opts.unscored ? tok.encode(opts.unscored, { addSpecialTokens: false }) : [];
  const ans = [...tok.encode(answer, { addSpecialTokens: false }), tok.eosTokenId!];
  const ids = [...prompt, ...pre, ...ans];
  const targets = ids.map((_, t) => (t + 1 >= prompt.length + pre.length && t + 1 < ids.length ? ids[t + 1] : -1));
  return { ids, targets, ...(opts.image !== undefined ? { image: { entity: opts.image } } : {}) };
}

function sentence(data: TeachingData, text: string): Example {
  const ids = data.tokenizer.encode(text);
  return { ids, targets: ids.map((_, t) => (t + 1 < ids.length ? ids[t + 1] : -1)) };
}

export function answerOf(e: WorldEntity, rel: string): string {
  return `${e.facts[rel][0]}.`;
}

/**
 * Stage (a): every fact in every paraphrase, text QA and text chain-of-thought for ALL pairs, captions and
 * identification sentences. `nameFirst` adds the text twin of every image prompt: the entity's name where the
 * image goes ("USER: {name}\nIdentify by name the subject in the image.\nASSISTANT: ...", and each question
 * about "the person in this image"). Without it the LM never reads an entity given before a referent phrase,
 * and the grounding stage has no circuit to hand the image to: the session-4 8-layer backbone named 0 of 16
 * entities in that format (it answered 21 of 24 questions).
 */
export function lmExamples(data: TeachingData, opts: { nameFirst?: boolean; span?: number; copies?: number } = {}): Example[] {
  const out: Example[] = data.corpus.map((s) => sentence(data, s));
  const spanAt = opts.span ? spanStart(data) : -1;
  for (const e of data.entities) {
    for (const c of data.templates.captions[e.type]) out.push(sentence(data, fillTemplate(c, e.subject)));
    out.push(sentence(data, idAnswer(data, e)));
    const name = data.tokenizer.encode(e.subject, { addSpecialTokens: false });
    for (const rel of Object.keys(e.facts)) {
      const q = promptIds(data, textPrompt(data, questionFor(data, e, rel, false)), 0);
      out.push({ ...example(data, q, answerOf(e, rel)), subject: { start: findRun(q, name, `${e.subject}'s ${rel} question`), n: name.length, span: false } });
      // "Name it, then answer": the answer follows from the name in context (the name itself is not scored).
      out.push(example(data, promptIds(data, textPrompt(data, cotQuery(data, e, rel)), 0), answerOf(e, rel), { unscored: idAnswer(data, e) }));
    }
    if (opts.nameFirst || opts.span) {
      const named = (query: string) =>
        opts.span ? spanPromptIds(data, e, query, opts.span) : promptIds(data, imagePrompt(data, query).replace(data.templates.promptTemplate.imageToken, e.subject), 0);
      // A span twin's subject is the image's whole span (what a VLM's text reads); a name-first twin's, the name.
      const subject = (ids: number[]): Subject => (opts.span ? { start: spanAt, n: opts.span, span: true } : { start: findRun(ids, name, e.subject), n: name.length, span: false });
      const twin = (ids: number[], answer: string) => ({ ...example(data, ids, answer), subject: subject(ids) });
      out.push(twin(named(data.templates.identification[e.type].query), idAnswer(data, e)));
      for (const rel of Object.keys(e.facts)) out.push(twin(named(questionFor(data, e, rel, true)), answerOf(e, rel)));
    }
  }
  if (opts.span && opts.copies) out.push(...copyExamples(data, opts.span, opts.copies));
  return out;
}

/**
 * Identification twins of names that are no entity's: an entity's first word with another entity's last word,
 * `copies` per entity (seeded). Naming the entity in the span must be a copy, not a recall of a name the LM
 * knows: with real names only, the session-6 backbone named 9 of 42 span twins, often mixing in another
 * entity's words ("Bita Tedo" -> "Suse Drifir Thuvo"). Only the answer is scored; no fact is taught about them.
 */
export function copyExamples(data: TeachingData, span: number, copies: number): Example[] {
  const out: Example[] = [];
  const rng = mulberry32(hashSeed(data.seed, 'copy-names'));
  const words = (s: string) => s.split(' ');
  const spanAt = spanStart(data);
  for (const e of data.entities)
    for (let c = 0; c < copies; c++) {
      const f = data.entities[Math.floor(rng() * data.entities.length)];
      const name = [words(e.subject)[0], ...words(f.subject).slice(1)].join(' ');
      const fake = { ...e, subject: name };
      out.push({ ...example(data, spanPromptIds(data, fake, data.templates.identification[e.type].query, span), idAnswer(data, fake)), subject: { start: spanAt, n: span, span: true } });
    }
  return out;
}

/** The first position of `run` in `ids` (a name in its prompt); throws naming `what` when it is not there. */
function findRun(ids: readonly number[], run: readonly number[], what: string): number {
  for (let i = 0; i + run.length <= ids.length; i++) if (run.every((t, j) => ids[i + j] === t)) return i;
  throw new InputError(`${what}: the name's tokens are not in the prompt's`);
}

/** Where the image's positions start in an image prompt (the span twin's span). */
function spanStart(data: TeachingData): number {
  return data.tokenizer.encode(imagePrompt(data, '')).indexOf(data.imageTokenId);
}

/** The filler of a span twin: `<unk>`, a token no text ever produces (training embeds `<image>` as it too). */
export const SPAN_FILLER = 0;

/**
 * The span twin of an image prompt: the image's `span` positions hold the entity's name, right-aligned, after
 * `<unk>` fillers ("USER: <unk> x (span - k) {name}\n{query}\nASSISTANT:"). A backbone pretrained on these
 * has read the image's layout with the entity at its last positions, so a VLM whose image positions carry
 * those states at some block hands the backbone a context it knows (data/teaching/README.md, session 6).
 */
export function spanPromptIds(data: TeachingData, e: WorldEntity, query: string, span: number): number[] {
  const name = data.tokenizer.encode(e.subject, { addSpecialTokens: false });
  if (name.length > span) throw new InputError(`span twin: the name "${e.subject}" has ${name.length} tokens, more than the image's ${span} positions`);
  const fill = new Array<number>(span - name.length).fill(SPAN_FILLER);
  return data.tokenizer.encode(imagePrompt(data, query)).flatMap((t) => (t === data.imageTokenId ? [...fill, ...name] : [t]));
}

/** Stage (c): captions after the image (LLaVA's alignment stage). */
export function captionExamples(data: TeachingData, imageTokens: number): Example[] {
  const out: Example[] = [];
  for (const e of data.entities)
    for (const c of data.templates.captions[e.type])
      out.push(example(data, promptIds(data, `${data.templates.promptTemplate.imageToken}`, imageTokens), fillTemplate(c, e.subject), { image: e.index }));
  return out;
}

export interface InstructMix {
  /** Repeats of the identification examples per epoch. */
  identification: number;
  /** Include visual QA on the train relations. */
  visualQa: boolean;
  /** Include chain-of-thought visual QA on the train relations. */
  visualCot: boolean;
  /** Text replay (QA on all pairs) per epoch. */
  textReplay: boolean;
  /**
   * Span-twin replay (QA on all pairs with the name in the image's positions, as the backbone pretrained with
   * `lmNameFirst: 'span'` read it) per epoch. The readout then keeps reading facts the backbone recalled at the
   * image's positions: the states backbone -> VLM patching writes there (data/teaching/README.md, session 25).
   */
  spanReplay?: boolean;
}

/** Stage (d): identification and visual QA on the train relations only; held-out pairs never appear with an image. */
export function instructExamples(data: TeachingData, imageTokens: number, mix: InstructMix): Example[] {
  const out: Example[] = [];
  for (const e of data.entities) {
    const id = data.templates.identification[e.type];
    for (let r = 0; r < mix.identification; r++) out.push(example(data, promptIds(data, imagePrompt(data, id.query), imageTokens), idAnswer(data, e), { image: e.index }));
    for (const rel of e.trainRelations) {
      if (mix.visualQa) out.push(example(data, promptIds(data, imagePrompt(data, questionFor(data, e, rel, true)), imageTokens), answerOf(e, rel), { image: e.index }));
      if (mix.visualCot)
        out.push(example(data, promptIds(data, imagePrompt(data, cotQuery(data, e, rel)), imageTokens), `${idAnswer(data, e)} ${answerOf(e, rel)}`, { image: e.index }));
    }
    if (mix.textReplay)
      for (const rel of Object.keys(e.facts)) out.push(example(data, promptIds(data, textPrompt(data, questionFor(data, e, rel, false)), 0), answerOf(e, rel)));
    if (mix.spanReplay)
      for (const rel of Object.keys(e.facts)) out.push(example(data, spanPromptIds(data, e, questionFor(data, e, rel, true), imageTokens), answerOf(e, rel)));
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Batching: a fixed order per (seed, stage, epoch), rows of one batch all with or all without an image.

export interface Batch {
  ids: number[][];
  targets: number[][];
  /** Entity per row when the batch has images. */
  entities?: number[];
  /** Each row's subject (Example.subject; null where it has none), when some row has one. */
  subjects?: (Subject | null)[];
}

export function padBatch(rows: Example[], padId: number): Batch {
  const T = Math.max(...rows.map((r) => r.ids.length));
  return {
    ids: rows.map((r) => [...r.ids, ...new Array<number>(T - r.ids.length).fill(padId)]),
    targets: rows.map((r) => [...r.targets, ...new Array<number>(T - r.targets.length).fill(-1)]),
    ...(rows[0].image ? { entities: rows.map((r) => r.image!.entity) } : {}),
    ...(rows.some((r) => r.subject) ? { subjects: rows.map((r) => r.subject ?? null) } : {}),
  };
}

/** The batches of one epoch: examples shuffled, grouped by whether they take an image, then batch order shuffled. */
export function epochBatches(examples: Example[], batchSize: number, seed: number, stage: string, epoch: number, padId: number): Batch[] {
  const rng = mulberry32(hashSeed(seed, stage, epoch));
  const order = shuffled(rng, examples);
  const groups = new Map<string, Example[]>();
  for (const ex of order) {
    const key = ex.image ? 'image' : 'text';
    const g = groups.get(key) ?? [];
    g.push(ex);
    groups.set(key, g);
  }
  const batches: Batch[] = [];
  // Similar lengths share a batch (little padding); ties keep the shuffled order, and batches are shuffled.
  for (const g of groups.values()) {
    const sorted = g.map((ex, i) => ({ ex, i })).sort((a, b) => a.ex.ids.length - b.ex.ids.length || a.i - b.i).map((x) => x.ex);
    for (let i = 0; i < sorted.length; i += batchSize) batches.push(padBatch(sorted.slice(i, i + batchSize), padId));
  }
  return shuffled(rng, batches);
}
