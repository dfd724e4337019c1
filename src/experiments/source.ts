// PromptSource: where an experiment's prompts come from. Either real data (a PopVQA-format Dataset +
// the model's tokenizer, template and image processor) or pre-tokenised prompts with their spans (models
// without a tokenizer, such as the HF fixtures). Experiments only see PromptCases.
import { InputError } from '../errors';
import type { PromptSpans } from '../io/prompt';
import type { Model } from '../models/model';
import { mulberry32, shuffled } from '../data/random';
import type { QuestionWhere } from '../data/popvqa';
import type { PixelInput } from './assets';

export interface EntityRef {
  /** Stable key (PopVQA: s_uri + subject). */
  key: string;
  subject: string;
  aliases: string[];
  type: string;
  /** Other attributes (extra entities.csv columns), for probe targets. */
  extra: Record<string, string>;
}

export type Modality = 'image' | 'text';

/** One tokenised prompt with everything needed to run and score it. */
export interface PromptCase {
  /** Unique within the source: entity, role, question and view. */
  id: string;
  entity: EntityRef;
  role: 'identify' | 'question' | 'naming' | 'view' | 'backbone';
  modality: Modality;
  inputIds: number[];
  spans: PromptSpans;
  /** Image key for `PromptSource.pixels`, or null for text prompts. */
  image: string | null;
  /** Possible answers (factual questions). */
  answers?: string[];
  relation?: string;
  question?: string;
  /** Index of the factual question among its entity's rows of questions.csv: pairs an image question with its own text question. */
  row?: number;
  /** Train/test split of an image view (probes). */
  split?: 'train' | 'test' | null;
  /** An image question carrying the chain-of-thought instruction. */
  cot?: boolean;
}

/** Which identification prompt: the type's own query (default) or the generic one, with or without its answer prefix. */
export interface IdentificationOptions {
  /** Append the type's answer prefix ("The name of the place is ") after the assistant tag (default false). */
  prefix?: boolean;
  /** The generic query the authors use for cross-type pairs (cross_patch.py:93-95). */
  generic?: boolean;
}

export interface PromptSource {
  readonly kind: 'dataset' | 'raw';
  /** The prompt template the source renders with ('pre-tokenised' for raw prompts). */
  readonly template?: string;
  /** Entities with their filters applied: types, then `limit` (a seeded sample when `seed` is given, 0 included; else the first). */
  entities(opts?: { types?: readonly string[] | null; limit?: number | null; seed?: number }): EntityRef[];
  /** Image + identification query (null when the entity has no image); no answer prefix unless asked. */
  identification(e: EntityRef, opts?: IdentificationOptions): PromptCase | null;
  /** Factual questions in one modality; `cotSuffix` appended to image questions for chain-of-thought prompting. */
  questions(e: EntityRef, modality: Modality, opts?: { cotSuffix?: string }): PromptCase[];
  /** Image prompts over every view of the entity (probes), with their train/test split when known. */
  views(e: EntityRef): PromptCase[];
  /** A text prompt naming the entity, with its subject span. */
  naming(e: EntityRef): PromptCase | null;
  /** The same factual question for a text-only backbone (its own tokenizer), naming the entity. */
  backbonePrompt(q: PromptCase, backbone: Model, opts?: { template?: string }): PromptCase | null;
  /** Preprocessed pixels of an image key. */
  pixels(image: string): Promise<PixelInput>;
  /** Token ids → text for answer matching. */
  decode(ids: readonly number[]): string;
  /** The entity name's token ids (logit-lens target: the first one). */
  entityTokens(e: EntityRef): number[];
  /**
   * The same source restricted to the factual questions passing `where` (questions.csv columns); entities
   * left without a question are dropped before `entities()` applies its limit. Throws InputError for a
   * column the data does not have. Sources without it cannot filter (`scopeQuestions` says so).
   */
  withQuestions?(where: QuestionWhere): PromptSource;
}

/** The spec field `questions` (schemas/common.json): which factual questions of the data to use; null = all. */
export interface QuestionSelection {
  where: QuestionWhere;
}

/** The source every experiment that draws factual questions works on: `source` with the spec's `questions` filter applied. */
export function scopeQuestions(source: PromptSource, sel: QuestionSelection | null | undefined): PromptSource {
  if (!sel || Object.keys(sel.where).length === 0) return source;
  if (!source.withQuestions) throw new InputError('spec field "questions": this data source cannot filter its questions (no withQuestions)');
  return source.withQuestions(sel.where);
}

/** Entity filtering shared by the sources: by type, then a deterministic sample. */
export function filterEntities(all: EntityRef[], opts: { types?: readonly string[] | null; limit?: number | null; seed?: number } = {}): EntityRef[] {
  let out = opts.types ? all.filter((e) => opts.types!.includes(e.type)) : all;
  if (opts.limit != null && out.length > opts.limit) {
    // A seed (0 included: the specs' default) samples; only a caller passing no seed gets the first N.
    if (opts.seed === undefined) out = out.slice(0, opts.limit);
    else {
      const keep = new Set(shuffled(mulberry32(opts.seed), out).slice(0, opts.limit));
      out = out.filter((e) => keep.has(e));
    }
  }
  return out;
}

export function isPromptSource(x: unknown): x is PromptSource {
  return typeof x === 'object' && x !== null && typeof (x as PromptSource).identification === 'function' && typeof (x as PromptSource).pixels === 'function';
}
