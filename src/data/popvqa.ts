// Loader for the PopVQA data format (entities.csv + questions.csv + images), arXiv 2412.14133, and the
// identification prompts of its reference code. The toyworld generator writes the same format.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'csv-parse/sync';
import { InputError } from '../errors';
import { parsePythonList } from './python-literal';
import { mulberry32, sampleInOrder } from './random';

export const ENTITY_TYPES = ['celebs', 'landmarks', 'paintings', 'brands'] as const;
export type EntityType = (typeof ENTITY_TYPES)[number];

export interface Entity {
  type: EntityType;
  sUri: string;
  subject: string;
  aliases: string[];
  /** Image path relative to the dataset root, as written in entities.csv. */
  resizedPath: string;
  /** False when the image file is missing (a warning says so); the entity is kept for text prompts. */
  imageFound: boolean;
  /** Columns beyond the required ones, verbatim. */
  extra: Record<string, string>;
}

export interface Question {
  sUri: string;
  subject: string;
  type: EntityType;
  question: string;
  questionForImage: string;
  possibleAnswers: string[];
  /** The `relation` column when the file has one (toyworld does; PopVQA's own file may not). */
  relation?: string;
  extra: Record<string, string>;
}

export interface Dataset {
  root: string;
  entities: Entity[];
  questions: Question[];
  /** Problems that did not stop loading: missing images, questions without an entity, duplicates. */
  warnings: string[];
  /** The columns of questions.csv, in file order (what a question filter may name). Absent on hand-made datasets. */
  questionColumns?: string[];
  /** Absolute path of an entity's image. */
  imagePath(entity: Entity): string;
}

export interface LoadOptions {
  entitiesFile?: string;
  questionsFile?: string;
  /** Keep only these types (default: all four). */
  types?: readonly EntityType[];
  /** At most this many entities per type. Without `seed`, the first ones in file order. */
  limitPerType?: number;
  /** With `limitPerType`: sample that many per type with this seed (file order kept). */
  seed?: number;
  /** Check that image files exist (default true). */
  checkImages?: boolean;
}

const ENTITY_COLUMNS = ['type', 's_uri', 'subject', 'aliases', 'resized_path'] as const;
const QUESTION_COLUMNS = ['s_uri', 'subject', 'question', 'question_for_image', 'possible_answers'] as const;
/** Individual missing-image warnings before they are summarised, so a wrong root does not flood the log. */
const MAX_LISTED = 20;

/** Loads a PopVQA-format folder. Throws InputError for unreadable or malformed CSVs; missing images only warn. */
export function loadPopVQA(root: string, opts: LoadOptions = {}): Dataset {
  const absRoot = path.resolve(root);
  const entitiesFile = path.resolve(absRoot, opts.entitiesFile ?? 'entities.csv');
  const questionsFile = path.resolve(absRoot, opts.questionsFile ?? 'questions.csv');
  const types = new Set<EntityType>(opts.types ?? ENTITY_TYPES);
  for (const t of types) {
    if (!ENTITY_TYPES.includes(t)) {
      throw new InputError(`loadPopVQA: unknown type filter '${t}'; allowed: ${ENTITY_TYPES.join(', ')}.`);
    }
  }
  if (opts.limitPerType !== undefined && !(Number.isInteger(opts.limitPerType) && opts.limitPerType >= 0)) {
    throw new InputError(`loadPopVQA: limitPerType must be a non-negative integer, got ${opts.limitPerType}.`);
  }
  const warnings: string[] = [];

  const entityRows = readCsv(entitiesFile, ENTITY_COLUMNS);
  let entities: Entity[] = [];
  const seen = new Set<string>();
  entityRows.forEach((row, i) => {
    const where = `${entitiesFile} row ${i + 2}`;
    const type = row.type.trim();
    if (!(ENTITY_TYPES as readonly string[]).includes(type)) {
      throw new InputError(`${where}: type '${type}' is not one of ${ENTITY_TYPES.join(', ')}.`);
    }
    const key = joinKey(row.s_uri, row.subject);
    if (seen.has(key)) {
      warnings.push(`${where}: duplicate entity (${row.s_uri}, ${row.subject}); the first row is used.`);
      return;
    }
    seen.add(key);
    if (!types.has(type as EntityType)) return;
    entities.push({
      type: type as EntityType,
      sUri: row.s_uri,
      subject: row.subject,
      aliases: parsePythonList(row.aliases, `${where} column aliases`),
      resizedPath: row.resized_path,
      imageFound: true,
      extra: extraColumns(row, ENTITY_COLUMNS),
    });
  });

  if (opts.limitPerType !== undefined) entities = limitByType(entities, opts.limitPerType, opts.seed);

  if (opts.checkImages ?? true) {
    const missing = entities.filter((e) => !fs.existsSync(path.resolve(absRoot, e.resizedPath)));
    for (const e of missing) e.imageFound = false;
    for (const e of missing.slice(0, MAX_LISTED)) {
      warnings.push(`missing image for ${e.sUri} (${e.subject}): ${path.resolve(absRoot, e.resizedPath)}`);
    }
    if (missing.length > MAX_LISTED) {
      warnings.push(`... and ${missing.length - MAX_LISTED} more missing images (${missing.length} in all).`);
    }
  }

  const byKey = new Map(entities.map((e) => [joinKey(e.sUri, e.subject), e]));
  const questions: Question[] = [];
  let orphans = 0;
  const questionRows = readCsv(questionsFile, QUESTION_COLUMNS);
  questionRows.forEach((row, i) => {
    const entity = byKey.get(joinKey(row.s_uri, row.subject));
    if (!entity) {
      // Expected when filtering by type or limit; only rows matching no entity at all are suspicious.
      if (!seen.has(joinKey(row.s_uri, row.subject))) orphans++;
      return;
    }
    const where = `${questionsFile} row ${i + 2}`;
    questions.push({
      sUri: row.s_uri,
      subject: row.subject,
      type: entity.type,
      question: row.question,
      questionForImage: row.question_for_image,
      possibleAnswers: parsePythonList(row.possible_answers, `${where} column possible_answers`),
      ...(row.relation !== undefined ? { relation: row.relation } : {}),
      extra: extraColumns(row, [...QUESTION_COLUMNS, 'relation']),
    });
  });
  if (orphans > 0) {
    warnings.push(`${questionsFile}: ${orphans} question rows match no entity on (s_uri, subject) and were skipped.`);
  }

  return {
    root: absRoot,
    entities,
    questions,
    warnings,
    questionColumns: questionRows.header,
    imagePath: (entity: Entity) => path.resolve(absRoot, entity.resizedPath),
  };
}

/**
 * A question filter on questions.csv columns: every named column must match (AND); a list of values
 * matches any of them (OR). Values are compared with the cell text exactly; `possible_answers` (a list)
 * matches when it contains the value. JSON-serialisable, as in experiment specs (`questions.where`).
 */
export type QuestionWhere = Record<string, string | string[]>;

/** The columns a question filter may name: questions.csv's header, or (hand-made datasets) what the questions carry. */
export function questionColumns(ds: Pick<Dataset, 'questions' | 'questionColumns'>): string[] {
  if (ds.questionColumns) return ds.questionColumns;
  const cols = new Set<string>(QUESTION_COLUMNS);
  for (const q of ds.questions) {
    if (q.relation !== undefined) cols.add('relation');
    for (const k of Object.keys(q.extra)) cols.add(k);
  }
  return [...cols];
}

function cellOf(q: Question, column: string): string | string[] | undefined {
  switch (column) {
    case 's_uri':
      return q.sUri;
    case 'subject':
      return q.subject;
    case 'question':
      return q.question;
    case 'question_for_image':
      return q.questionForImage;
    case 'possible_answers':
      return q.possibleAnswers;
    case 'relation':
      return q.relation;
    default:
      return q.extra[column];
  }
}

/** Whether a row passes `where`, given its cells by column (columns are not checked here: see `checkQuestionWhere`). */
export function matchesWhere(cell: (column: string) => string | readonly string[] | undefined, where: QuestionWhere): boolean {
  return Object.entries(where).every(([column, want]) => {
    const wanted: readonly string[] = Array.isArray(want) ? want : [want];
    const v = cell(column);
    if (v === undefined) return false;
    return typeof v === 'string' ? wanted.includes(v) : v.some((c) => wanted.includes(c));
  });
}

/** Whether one question passes `where`. */
export function questionMatches(q: Question, where: QuestionWhere): boolean {
  return matchesWhere((c) => cellOf(q, c), where);
}

/** Throws InputError when `where` names a column not in `columns` (listing them) or has a value that is not a string (list). */
export function checkQuestionWhere(where: QuestionWhere, columns: readonly string[], what = 'questions.csv'): void {
  for (const [column, want] of Object.entries(where)) {
    if (!columns.includes(column)) {
      throw new InputError(
        `question filter: ${what} has no column '${column}' (columns: ${columns.join(', ') || 'none'}). ` +
          `Filter on one of those, or drop the filter (real PopVQA has no vqa_split column, for instance).`,
      );
    }
    const values: unknown[] = Array.isArray(want) ? want : [want];
    if (values.length === 0 || values.some((v) => typeof v !== 'string')) {
      throw new InputError(`question filter: column '${column}' needs a string or a non-empty list of strings, got ${JSON.stringify(want)}.`);
    }
  }
}

/**
 * The dataset with only the questions passing `where`; entities left without a question are dropped
 * (entities that had none to begin with too). Throws InputError naming a column questions.csv does not
 * have, with the ones it has.
 */
export function filterQuestions(ds: Dataset, where: QuestionWhere): Dataset {
  checkQuestionWhere(where, questionColumns(ds), `questions.csv in ${ds.root}`);
  const questions = ds.questions.filter((q) => questionMatches(q, where));
  const kept = new Set(questions.map((q) => joinKey(q.sUri, q.subject)));
  return { ...ds, questions, entities: ds.entities.filter((e) => kept.has(joinKey(e.sUri, e.subject))) };
}

/** The identification query and answer prefix of the PopVQA reference code, by entity type. */
export function identificationPrompt(type: EntityType): { query: string; answerPrefix: string } {
  switch (type) {
    case 'paintings':
      return { query: 'Identify by name the painting in the image.', answerPrefix: 'The name of the painting is ' };
    case 'brands':
      return {
        query: "Identify by name the brand who's logo appears in the image.",
        answerPrefix: 'The name of the brand is ',
      };
    case 'landmarks':
      return { query: 'Identify by name the place in the image.', answerPrefix: 'The name of the place is ' };
    case 'celebs':
      return { query: 'Identify by name the subject in the image.', answerPrefix: 'The subject in this image is ' };
    default:
      throw new InputError(`identificationPrompt: unknown entity type '${String(type)}'; allowed: ${ENTITY_TYPES.join(', ')}.`);
  }
}

/**
 * The generic identification prompt the authors use when donor and target types differ in
 * cross-patching (github ido-co/vlm-modality-gap cross_patch.py:93-95; note "in the image", not "in this image").
 */
export const GENERIC_IDENTIFICATION = { query: 'Identify by name the subject in the image.', answerPrefix: 'The subject in the image is' } as const;

/** Questions grouped by entity key `${sUri}\u0000${subject}`, for per-entity aggregation. */
export function questionsByEntity(ds: Pick<Dataset, 'questions'>): Map<string, Question[]> {
  const out = new Map<string, Question[]>();
  for (const q of ds.questions) {
    const key = joinKey(q.sUri, q.subject);
    const list = out.get(key);
    if (list) list.push(q);
    else out.set(key, [q]);
  }
  return out;
}

/** The join key of the reference code: (s_uri, subject). */
export function joinKey(sUri: string, subject: string): string {
  return `${sUri}\u0000${subject}`;
}

function limitByType(entities: Entity[], limit: number, seed: number | undefined): Entity[] {
  const keep = new Set<Entity>();
  for (const type of ENTITY_TYPES) {
    const ofType = entities.filter((e) => e.type === type);
    const chosen = seed === undefined ? ofType.slice(0, limit) : sampleInOrder(mulberry32(seed), ofType, limit);
    for (const e of chosen) keep.add(e);
  }
  return entities.filter((e) => keep.has(e));
}

function readCsv(file: string, required: readonly string[]): Array<Record<string, string>> & { header: string[] } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read ${file}: ${(err as Error).message}. Is the PopVQA root folder right?`);
  }
  let rows: Array<Record<string, string>>;
  let header: string[] = [];
  try {
    rows = parse(text, {
      bom: true,
      columns: (h: string[]) => (header = h.map((c) => c.trim())),
      skip_empty_lines: true,
    }) as Array<Record<string, string>>;
  } catch (err) {
    throw new InputError(`${file}: not valid CSV: ${(err as Error).message}`);
  }
  const missing = required.filter((c) => !header.includes(c));
  if (missing.length > 0) {
    throw new InputError(
      `${file}: missing column${missing.length > 1 ? 's' : ''} ${missing.map((c) => `'${c}'`).join(', ')} ` +
        `(found: ${header.join(', ') || 'no header'}). The PopVQA format needs ${required.join(', ')}.`,
    );
  }
  return Object.assign(rows, { header });
}

function extraColumns(row: Record<string, string>, known: readonly string[]): Record<string, string> {
  const extra: Record<string, string> = {};
  for (const [k, v] of Object.entries(row)) if (!known.includes(k)) extra[k] = v;
  return extra;
}
