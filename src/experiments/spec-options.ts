// Command-line options of an experiment kind, derived from its JSON Schema (schemas/<kind>.json, the single
// source of truth for a spec's fields): a magic or a CLI maps each to a flag, so a field added to the schema
// gets its flag without a third copy of the spec (issue 13). Reads JSON only: no ajv, no tfjs.
import * as fs from 'node:fs';
import { SpecError } from '../errors';

/** How a flag's text becomes the field's value. */
export type OptionType = 'int' | 'number' | 'string' | 'boolean' | 'list' | 'ints' | 'ranges';

export interface SpecOption {
  /** The spec field, e.g. "topK". */
  field: string;
  /** The flag, e.g. "--top-k" (kebab-case of the field unless the definition renames it). */
  flag: string;
  type: OptionType;
  /** Allowed values (from the schema's enum). */
  choices?: string[];
  help: string;
}

type Schema = Record<string, unknown>;

/** Fields every experiment magic or CLI already covers with a shared flag, or that are not values to type. */
const SHARED = new Set(['kind', 'version', 'notes', 'layers', 'limit', 'seed']);

export function readSchemaFile(file: string): Schema {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Schema;
  } catch (e) {
    throw new SpecError(`cannot read the schema ${file}: ${(e as Error).message}`);
  }
}

/** Follows a `$ref` into common.json (the only schema the experiment schemas point into). */
function resolve(s: Schema, common: Schema): Schema {
  const ref = s.$ref;
  if (typeof ref !== 'string') return s;
  const m = /^common\.json#\/definitions\/(\w+)$/.exec(ref) ?? /^#\/definitions\/(\w+)$/.exec(ref);
  const target = m ? ((common.definitions as Record<string, Schema> | undefined)?.[m[1]] ?? null) : null;
  if (!target) throw new SpecError(`schema reference ${ref} does not point into common.json#/definitions`);
  return { ...resolve(target, common), ...Object.fromEntries(Object.entries(s).filter(([k]) => k !== '$ref')) };
}

/** The non-null alternatives of a property (`oneOf: [{type: null}, X]` → [X]). */
function branches(s: Schema, common: Schema): Schema[] {
  const r = resolve(s, common);
  const alts = (r.oneOf ?? r.anyOf) as Schema[] | undefined;
  if (!alts) return [r];
  return alts.map((a) => resolve(a, common)).filter((a) => a.type !== 'null');
}

function enumOf(s: Schema): string[] | null {
  const e = s.enum as unknown[] | undefined;
  return e && e.every((x) => typeof x === 'string') ? (e as string[]) : null;
}

function typeOf(s: Schema, common: Schema): { type: OptionType; choices?: string[] } | null {
  const alts = branches(s, common);
  const choices = alts.map(enumOf).find((e) => e !== null);
  if (choices) return { type: 'string', choices };
  const one = alts[0];
  if (!one) return null;
  const t = Array.isArray(one.type) ? one.type.find((x) => x !== 'null') : one.type;
  if (t === 'integer') return { type: 'int' };
  if (t === 'number') return { type: 'number' };
  if (t === 'boolean') return { type: 'boolean', choices: ['true', 'false'] };
  if (t === 'string') return { type: 'string' };
  if (t === 'array' && one.items) {
    const items = branches(one.items as Schema, common);
    if (items.some((i) => enumOf(i) || i.type === 'string')) return { type: 'list' };
    if (items[0]?.type === 'integer') return { type: 'ints' };
    if (items[0]?.type === 'array') return { type: 'ranges' };
  }
  return null;
}

const kebab = (field: string) => `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

function helpOf(s: Schema, common: Schema): string {
  const d = (s.description ?? resolve(s, common).description) as string | undefined;
  if (!d) return '';
  const first = d.split(/(?<=\.)\s/)[0];
  return first.length > 110 ? `${first.slice(0, 107)}...` : first;
}

/**
 * The options of a schema's own fields (not the shared `layers`, `limit`, `seed`); fields whose values are
 * objects (e.g. `questions`) have none and are set with `--set field=JSON`. `rename` maps a field to its flag.
 */
export function specOptions(schema: Schema, common: Schema, rename: Readonly<Record<string, string>> = {}): SpecOption[] {
  const props = (schema.properties ?? {}) as Record<string, Schema>;
  const out: SpecOption[] = [];
  for (const [field, s] of Object.entries(props)) {
    if (SHARED.has(field)) continue;
    const t = typeOf(s, common);
    if (!t) continue;
    out.push({ field, flag: rename[field] ?? kebab(field), ...t, help: helpOf(s, common) });
  }
  return out;
}

/**
 * The largest index a range flag may name (`--layers`, `--rows`): far above any model's depth or any result
 * axis a flag selects from, far below what would stall the kernel (`0-4000000000` expanded into a Set of 4e9
 * numbers; found by test/fuzz/magics.test.ts, first for --layers, then for --rows).
 */
export const MAX_RANGE_INDEX = 4096;

/** `5-29`, `0,3,8-10` → sorted unique indices below MAX_RANGE_INDEX; undefined when it does not parse. */
export function parseIndexRanges(v: string): number[] | undefined {
  const out = new Set<number>();
  for (const part of v.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) return undefined;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || b >= MAX_RANGE_INDEX) return undefined;
    for (let i = a; i <= b; i++) out.add(i);
  }
  return out.size ? [...out].sort((x, y) => x - y) : undefined;
}

/** Turns a flag's text into the field's value; undefined when it does not parse (the caller names the flag). */
export function parseOption(o: SpecOption, text: string): unknown {
  switch (o.type) {
    case 'int':
      return /^\d+$/.test(text.trim()) ? Number(text) : undefined;
    case 'number':
      return text.trim() !== '' && Number.isFinite(Number(text)) ? Number(text) : undefined;
    case 'boolean':
      return text === 'true' ? true : text === 'false' ? false : undefined;
    case 'string':
      return text;
    case 'list': {
      const xs = text.split(',').map((x) => x.trim()).filter(Boolean);
      return xs.length ? xs : undefined;
    }
    case 'ints':
      return parseIndexRanges(text);
    case 'ranges': {
      const out = text.split(',').map((b) => /^(\d+)-(\d+)$/.exec(b.trim()));
      return out.every((m) => m && Number(m[1]) <= Number(m[2])) ? out.map((m) => [Number(m![1]), Number(m![2])]) : undefined;
    }
  }
}

/** What `parseOption` expects, for the error naming a flag's bad value. */
export function optionExpects(o: SpecOption): string {
  return {
    int: 'a non-negative integer',
    number: 'a number',
    string: 'a string',
    boolean: 'true or false',
    list: 'a comma-separated list',
    ints: 'integers like 0,3,8-10',
    ranges: 'layer bands like 0-9,11-20',
  }[o.type];
}
